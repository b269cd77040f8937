import Foundation
import XCTest
@testable import WconvFormats
import WconvTensor

/// Crafted headers of the formats doc §5.2 table; the generator recorded the reference's verdict.
final class SafetensorsValidationTests: XCTestCase {
    typealias F = SafetensorsFixtures

    func testCraftedHeadersAreJudgedLikeTheReferenceExceptDuplicates() throws {
        let cases = F.expected["crafted"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 25)
        for c in cases {
            let rel = c["file"] as! String, path = F.path(rel)
            let wconvAccepts = c["wconv_accepts"] as! Bool
            let referenceAccepts = c["reference_accepts"] as! Bool
            if !rel.contains("duplicate_name") {
                XCTAssertEqual(wconvAccepts, referenceAccepts, "\(rel): wconv and the reference should agree")
            }
            do {
                _ = try SafetensorsReader.read(path: path)
                XCTAssertTrue(wconvAccepts, "\(rel) (\(c["tests"]!)) was accepted")
            } catch let e as WconvError {
                XCTAssertFalse(wconvAccepts, "\(rel) refused: \(e)")
                XCTAssertEqual(e.kind, .invalidInput, rel)
                XCTAssertEqual(e.file, path, "\(rel): the message names the file")
            }
        }
    }

    func testDuplicateNameThatTheReferenceAcceptsIsRefused() throws {
        let c = (F.expected["crafted"] as! [[String: Any]]).first { ($0["file"] as! String).contains("duplicate_name") }!
        XCTAssertTrue(c["reference_accepts"] as! Bool, "the generator observed the reference keeping the last entry")
        XCTAssertThrowsError(try SafetensorsReader.read(path: F.path(c["file"] as! String))) { error in
            XCTAssertTrue((error as! WconvError).message.contains("\"a\" twice"), "\(error)")
        }
    }

    func testMessagesNameTheTensorAndOffsets() throws {
        XCTAssertThrowsError(try SafetensorsReader.read(path: F.path("invalid/overlap.safetensors"))) { error in
            let m = (error as! WconvError).message
            XCTAssertTrue(m.contains("\"b\"") && m.contains("[4, 12]"), m)
        }
        XCTAssertThrowsError(try SafetensorsReader.read(path: F.path("invalid/size_mismatch.safetensors"))) { error in
            let m = (error as! WconvError).message
            XCTAssertTrue(m.contains("needs 12 bytes") && m.contains("give 8"), m)
        }
        XCTAssertThrowsError(try SafetensorsReader.read(path: F.path("invalid/trailing_bytes.safetensors"))) { error in
            XCTAssertTrue((error as! WconvError).message.contains("trailing bytes"), "\(error)")
        }
    }

    func testHeaderFromMemoryNeverTrapsOnMutations() throws {
        // Every single-byte mutation and every truncation of a valid file must be accepted or
        // refused with an error (the fuzz target runs the same entry on arbitrary input).
        let valid = F.bytes(F.path("valid/tied.safetensors"))
        let headerEnd = 8 + Int(valid.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for i in 0..<headerEnd {
            for v: UInt8 in [0x00, 0x22, 0x30, 0x7B, 0xFF] {
                var m = valid
                m[i] = v
                m.withUnsafeBytes { fuzzSafetensorsHeader($0) }
            }
        }
        for n in 0..<valid.count { Array(valid.prefix(n)).withUnsafeBytes { fuzzSafetensorsHeader($0) } }
    }

    func testDeepNestingIsBounded() throws {
        let deep = Array(String(repeating: "[", count: 100_000).utf8)
        XCTAssertThrowsError(try JSONValue.parse(deep, options: .strict))
        XCTAssertThrowsError(try JSONValue.parse(deep, options: .python))
    }

    func testStrictJSON() throws {
        XCTAssertEqual(try JSONValue.parse(Array(#"{"a":[1,"\u00e9\ud83d\ude00",null,true]}"#.utf8), options: .strict),
                       .object([("a", .array([.int(1), .string("é😀"), .null, .bool(true)]))]))
        for bad in [#"{"a":1,}"#, #"{"a":01}"#, #"{"a":"\x"}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\n\"}", #"{"a":1}x"#, "[1.]",
                    #"{"a":1,"a":2}"#, "NaN", "[Infinity]", "-Infinity"] {
            XCTAssertThrowsError(try JSONValue.parse(Array(bad.utf8), options: .strict), bad)
        }
        func number(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8), options: .strict) }
        XCTAssertNil(try number("-1").nonNegativeInt)
        XCTAssertNil(try number("-0").nonNegativeInt, "serde reads -0 as a float")
        XCTAssertNil(try number("1e3").nonNegativeInt)
        XCTAssertNil(try number("1.0").nonNegativeInt)
        XCTAssertNil(try number("99999999999999999999").nonNegativeInt)
        XCTAssertEqual(try number("123").nonNegativeInt, 123)
    }
}
