import Foundation
import WconvFormats
import WconvTensor
import WconvText
import XCTest
import WconvTestSupport

/// CSV, TSV and JSONL text data read as Python's csv and json modules read them
/// (fixtures/text/data, tools/fixtures/text/gen_text_data.py), and bad files refused by line.
final class TextDatasetTests: XCTestCase {
    let columns = TextColumns(text: "sentence", label: "label", pair: "sentence2")

    func testFilesReadAsPythonReadsThem() throws {
        let expected = try TextFixtures.json("data/expected.json")
        for name in ["tricky.csv", "tricky.tsv", "tricky.jsonl"] {
            let d = try TextDataset.read(TextFixtures.path("data/" + name), columns: columns)
            let want = try XCTUnwrap(expected[name])
            let classes = try XCTUnwrap(want["classes"]?.array?.compactMap(\.string))
            XCTAssertEqual(d.classes, classes, name)
            let rows = try XCTUnwrap(want["rows"]?.array)
            XCTAssertEqual(d.count, rows.count, name)
            for (e, r) in zip(d.examples, rows) {
                // Compared as scalars: Swift's == would equate NFC and NFD spellings.
                XCTAssertEqual(Array(e.text.unicodeScalars), Array(r["text"]!.string!.unicodeScalars), "\(name) line \(e.line)")
                XCTAssertEqual(e.pair.map { Array($0.unicodeScalars) }, Array(r["pair"]!.string!.unicodeScalars), "\(name) line \(e.line)")
                XCTAssertEqual(d.classes[e.label], r["label"]?.string, "\(name) line \(e.line)")
            }
            XCTAssertTrue(d.hasPairs)
        }
        // Line numbers count the header and the line break inside a quoted field.
        let csv = try TextDataset.read(TextFixtures.path("data/tricky.csv"), columns: columns)
        XCTAssertEqual(csv.examples.map(\.line), [2, 3, 4, 6, 8, 9, 10, 11])
    }

    func testValidationLabelsMapOntoTrainingClasses() throws {
        let train = try TextDataset.read(TextFixtures.path("data/tricky.tsv"), columns: columns)
        let val = try TextDataset.read(TextFixtures.path("data/tricky.csv"), columns: columns, classes: train.classes)
        XCTAssertEqual(val.labels, train.labels)
        XCTAssertThrowsError(try TextDataset.read(TextFixtures.path("data/tricky.jsonl"), columns: columns, classes: train.classes)) { e in
            XCTAssertTrue("\(e)".contains("line 10: label \"3\" is not one of the 4 training classes"), "\(e)")
        }
    }

    func testRefusalsNameTheLine() throws {
        let tmp = TempDir()
        func refused(_ name: String, _ bytes: [UInt8], _ expected: String, columns: TextColumns = TextColumns(), line: UInt = #line) {
            let path = tmp.write(name, bytes)
            XCTAssertThrowsError(try TextDataset.read(path, columns: columns), line: line) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(e)", line: line)
                XCTAssertTrue("\(e)".contains(name), "names the file: \(e)", line: line)
            }
        }
        refused("utf8.csv", Array("text,label\ngood,a\n".utf8) + [0x62, 0x61, 0x64, 0xC3, 0x28, 0x2C, 0x62, 0x0A], "line 3 is not valid UTF-8")
        refused("utf8.jsonl", Array("{\"text\": \"ok\", \"label\": \"a\"}\n{\"text\": \"".utf8) + [0xFF] + Array("\", \"label\": \"b\"}\n".utf8), "line 2 is not valid UTF-8")
        refused("fields.csv", Array("text,label\na,b\nc,d,e\n".utf8), "line 3 has 3 fields but the header has 2")
        refused("quote.csv", Array("text,label\n\"open,b\nc,d\n".utf8), "line 2: a quoted field is never closed")
        refused("column.tsv", Array("sentence\tlabel\na\tb\n".utf8), "the header has no column \"text\"")
        refused("nolabel.csv", Array("text,label\na,\n".utf8), "line 2 has an empty \"label\"")
        refused("nolabel.jsonl", Array("{\"text\": \"a\", \"label\": \"x\"}\n\n{\"text\": \"b\"}\n".utf8), "line 3 has no \"label\"")
        refused("badjson.jsonl", Array("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \n".utf8), "line 2 is not valid JSON")
        refused("notext.jsonl", Array("{\"text\": 5, \"label\": \"x\"}\n".utf8), "line 1: \"text\" must be a string")
        refused("nopair.jsonl", Array("{\"text\": \"a\", \"label\": \"x\"}\n".utf8), "line 1 has no \"second\"", columns: TextColumns(pair: "second"))
        refused("empty.csv", Array("text,label\n".utf8), "no examples")
        refused("data.txt", Array("x".utf8), "use .csv, .tsv or .jsonl")
    }
}
