import Foundation
import WconvFormats
import WconvTensor
import XCTest

/// The strict CSV reader: RFC 4180 quoting, and every malformed input refused with its line.
final class CSVTableTests: XCTestCase {
    func parse(_ s: String) throws -> CSVTable { try CSVTable.parse(Data(s.utf8)) }

    func testQuotingLineEndsAndBOM() throws {
        let t = try parse("\u{FEFF}path,a,b\r\n\"x, \"\"quoted\"\".png\",1,\r\n\n\"multi\nline.png\",,-1.0\ry.png,0,1")
        XCTAssertEqual(t.header, ["path", "a", "b"])
        XCTAssertEqual(t.rows, [["x, \"quoted\".png", "1", ""], ["multi\nline.png", "", "-1.0"], ["y.png", "0", "1"]])
        XCTAssertEqual(t.lines, [2, 4, 6])
        // A final empty field without a line break is kept (SwiftCSV drops it).
        XCTAssertEqual(try parse("path,a,b\nx.png,1,").rows, [["x.png", "1", ""]])
        XCTAssertEqual(try parse("path,a\n\"\",1\n").rows, [["", "1"]])
    }

    func testMalformedInputNamesTheLine() {
        let cases: [(String, String)] = [
            ("path,a\nx.png,1\n\"y.png,0\n", "line 3: a quoted field is never closed"),
            ("path,a\nx\"y.png,1\n", "line 2: a quote inside a field"),
            ("path,a\n\"x.png\"z,1\n", "line 2: text after a closing quote"),
            ("path,a,b\nx.png,1\ny.png,1,0\n", "line 2 (row 2): 2 fields but the header has 3"),
            ("", "the CSV is empty"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try parse(text), text) { e in
                XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
                XCTAssertTrue("\(e)".contains(expected), "\(e)")
            }
        }
        XCTAssertThrowsError(try CSVTable.parse(Data([0x70, 0xFF, 0xFE, 0x0A])))
    }

    /// Text data: the Python dialect keeps stray quotes as text and a lone CR in the field; TSV
    /// splits on tabs only; records carry their lines; an unclosed quote names the line it opened on.
    func testPythonDialectAndTSV() throws {
        func records(_ s: String, _ d: UInt8 = 0x2C) throws -> [CSVTable.Record] {
            try CSVTable.records(Array(s.utf8), dialect: .python(delimiter: d))
        }
        XCTAssertEqual(try records("a,b\nx\"y,\"q\"z\r\nc\rd,e").map(\.fields), [["a", "b"], ["x\"y", "qz"], ["c\rd", "e"]])
        XCTAssertEqual(try records("t\tl\n\"a,\tb\"\tc,d\n\n\"\"\t\n", 0x09).map(\.fields), [["t", "l"], ["a,\tb", "c,d"], ["", ""]])
        XCTAssertEqual(try records("h\n\"two\nlines\"\nnext\n").map(\.line), [1, 2, 4])
        XCTAssertThrowsError(try CSVTable.records(Array("h\nok\n\"open\nmore\n".utf8), dialect: .python(delimiter: 0x2C), file: "d.csv")) { e in
            XCTAssertTrue("\(e)".contains("line 3: a quoted field is never closed") && "\(e)".contains("d.csv"), "\(e)")
        }
    }
}
