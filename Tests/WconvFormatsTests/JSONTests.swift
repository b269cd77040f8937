import Foundation
import XCTest
import WconvFormats
import WconvTensor

/// The one JSON value, parser and writer: the options each reader relies on, and output that matches
/// Python's `json` and serde_json where wconv writes what they write.
final class JSONTests: XCTestCase {
    func parse(_ s: String, _ o: JSONParseOptions) throws -> JSONValue { try JSONValue.parse(Array(s.utf8), options: o) }

    func testDuplicateKeys() throws {
        XCTAssertThrowsError(try parse(#"{"a":1,"b":2,"a":3}"#, .strict)) { e in
            let f = e as! JSONParseError
            XCTAssertEqual(f.duplicateKey, "a")
            XCTAssertEqual(f.offset, 13, "the offset names the second key")
        }
        // Python's json.loads: the last value, at the first key's position.
        let v = try parse(#"{"a":1,"b":2,"a":3}"#, .python)
        XCTAssertEqual(v.object.map { Array($0.keys) }, ["a", "b"])
        XCTAssertEqual(v["a"], .int(3))
    }

    func testNonFiniteLiteralsOnlyWhenAllowed() throws {
        let v = try parse("[NaN, Infinity, -Infinity]", .python)
        XCTAssertTrue(v[0]!.double!.isNaN)
        XCTAssertEqual(v[1], .double(.infinity))
        XCTAssertEqual(v[2], .double(-.infinity))
        for s in ["NaN", "[Infinity]", "-Infinity"] { XCTAssertThrowsError(try parse(s, .strict), s) }
        XCTAssertThrowsError(try parse("Nan", .python))
    }

    func testDepthLimit() throws {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        XCTAssertNoThrow(try parse(ok, .strict))
        XCTAssertThrowsError(try parse("[" + ok + "]", .strict))
        XCTAssertNoThrow(try parse("[" + ok + "]", .python))
        var custom = JSONParseOptions.python
        custom.maxDepth = 2
        XCTAssertThrowsError(try parse("[[[1]]]", custom))
    }

    func testIntegersAndFloatsStayApart() throws {
        let v = try parse("[1, 1.0, 1e0, -0, 99999999999999999999, -7]", .strict)
        XCTAssertEqual(v[0], .int(1))
        XCTAssertEqual(v[1], .double(1))
        XCTAssertEqual(v[2], .double(1))
        XCTAssertEqual(v[3]?.double.map { $0.sign }, .minus, "-0 is a float, as serde_json reads it")
        XCTAssertEqual(v[4], .double(1e20))
        XCTAssertEqual(v[5], .int(-7))
        // Settings written as 3.0 still read as ints; ints read as doubles.
        XCTAssertEqual(v[1]?.int, 1)
        XCTAssertEqual(v[0]?.double, 1)
        XCTAssertEqual(v.serialized, "[1,1.0,1.0,-0.0,1e+20,-7]")
    }

    /// Integers above Int.max keep every digit up to UInt64.max (seeds); one past it is a double.
    func testUnsignedIntegersBeyondIntRoundTrip() throws {
        let v = try parse("[9223372036854775808, 18446744073709551615, 18446744073709551616]", .strict)
        XCTAssertEqual(v[0], .uint(1 << 63))
        XCTAssertEqual(v[1], .uint(.max))
        XCTAssertEqual(v[2], .double(18446744073709551616))
        XCTAssertEqual(v.serialized, "[9223372036854775808,18446744073709551615,1.8446744073709552e+19]")
        XCTAssertNil(v[1]?.int)
        XCTAssertEqual(try JSONValueDecoder().decode([UInt64].self, from: .array([v[0]!, v[1]!])), [1 << 63, .max])
        XCTAssertThrowsError(try JSONValueDecoder().decode(Int64.self, from: v[0]!), "beyond Int64")
        XCTAssertEqual(JSONValue(UInt64.max), .uint(.max))
        XCTAssertEqual(JSONValue(Int64.min), .int(.min))
    }

    func testParseErrorNamesTheFileAndByte() throws {
        XCTAssertThrowsError(try JSONValue.parse(#"{"a": tru}"#, what: "config.json", file: "m/config.json")) { e in
            let w = e as! WconvError
            XCTAssertEqual(w.kind, .invalidInput)
            XCTAssertEqual(w.file, "m/config.json")
            XCTAssertTrue(w.message.hasPrefix("config.json is not valid JSON: invalid literal at byte 6"), w.message)
        }
    }

    func testQuotingMatchesPythonAndSerde() {
        let s = "é😀\u{7f}\u{01}\u{08}\u{0C}\"\\\n"
        // json.dumps(s) and json.dumps(s, ensure_ascii=False) / serde_json::to_string(s).
        XCTAssertEqual(JSONValue.quoted(s, asciiOnly: true), #""\u00e9\ud83d\ude00\u007f\u0001\b\f\"\\\n""#)
        XCTAssertEqual(JSONValue.quoted(s), "\"é😀\u{7f}\\u0001\\b\\f\\\"\\\\\\n\"")
    }

    /// Strings without a character to escape take the whole-string path; each character that needs
    /// one sends the string through the scalar loop. Both paths agree with Python's json.dumps.
    func testQuotingFastPathAndEscapes() {
        XCTAssertEqual(JSONValue.quoted("layer4.1.bn2.running_var"), #""layer4.1.bn2.running_var""#)
        XCTAssertEqual(JSONValue.quoted("é.weight"), "\"é.weight\"")
        XCTAssertEqual(JSONValue.quoted("é.weight", asciiOnly: true), #""\u00e9.weight""#)
        XCTAssertEqual(JSONValue.quoted("a\u{7f}", asciiOnly: true), #""a\u007f""#)
        XCTAssertEqual(JSONValue.quoted("a\u{7f}"), "\"a\u{7f}\"")
        for (raw, want) in [("a\"b", #""a\"b""#), ("a\\b", #""a\\b""#), ("a\u{1f}", #""a\u001f""#), ("", #""""#)] {
            XCTAssertEqual(JSONValue.quoted(raw), want)
            XCTAssertEqual(JSONValue.quoted(raw, asciiOnly: true), want)
        }
    }

    func testLayouts() throws {
        let v: JSONValue = ["a": "é", "b": [1, 2.5, nil, true], "c": [:], "d": [[1, 2], ["x"]], "e": .double(.nan)]
        XCTAssertEqual(v.serialized, #"{"a":"é","b":[1,2.5,null,true],"c":{},"d":[[1,2],["x"]],"e":NaN}"#)
        // json.dump(v, indent=2) (with e left out: Python writes NaN there too).
        var py = v
        py["e"] = nil
        XCTAssertEqual(py.text(.pythonIndented), """
        {
          "a": "\\u00e9",
          "b": [
            1,
            2.5,
            null,
            true
          ],
          "c": {},
          "d": [
            [
              1,
              2
            ],
            [
              "x"
            ]
          ]
        }
        """)
        XCTAssertEqual(v.text(.pretty), """
        {
          "a": "é",
          "b": [1, 2.5, null, true],
          "c": {},
          "d": [
            [1, 2],
            ["x"]
          ],
          "e": "nan"
        }
        """)
        // Number rows stay on one line at any length; long lists of strings do not.
        let long = JSONValue.array((0..<20).map { .int($0) })
        XCTAssertFalse(long.text(.pretty).contains("\n"))
        XCTAssertTrue(JSONValue.array((0..<9).map { .string("\($0)") }).text(.pretty).contains("\n"))
        // Written text parses back to the same value.
        XCTAssertEqual(try parse(py.text(.pythonIndented), .strict), py)
        XCTAssertEqual(try parse(py.text(.pretty), .strict), py)
    }

    struct Report: Encodable {
        enum Kind: Encodable { case fixed(Int), none }
        var zeta = "first"
        var alpha: Float = 0.1
        var missing: String? = nil
        var counts = ["b": 2, "a": 1, "c": 3]
        var optionals: [Double?] = [1, nil]
        var kind = Kind.fixed(4)
        var seed = UInt64.max
    }

    func testEncodingKeepsDeclarationOrder() throws {
        let v = try JSONValue(encoding: Report())
        XCTAssertEqual(v.object.map { Array($0.keys) }, ["zeta", "alpha", "counts", "optionals", "kind", "seed"],
                       "declaration order; nil optionals left out")
        XCTAssertEqual(v["alpha"], .double(0.1), "a Float keeps its short spelling")
        XCTAssertEqual(v["counts"]?.object.map { Array($0.keys) }, ["a", "b", "c"], "dictionary keys sorted")
        XCTAssertEqual(v["optionals"], [1.0, nil])
        XCTAssertEqual(v["kind"], ["fixed": ["_0": 4]])
        XCTAssertEqual(v["seed"], .uint(UInt64.max), "every digit of a UInt64 seed")
    }

    struct Doc: Codable, Equatable {
        enum Mode: String, Codable { case fast, slow }
        var name: String
        var count: Int
        var ratio: Double
        var small: Float
        var flags: [Bool]
        var shape: [Int?]
        var mode: Mode
        var note: String?
        var table: [String: [UInt8]]
    }

    /// Typed reads through the one parser: the same values Foundation's JSONDecoder gives, exact
    /// numeric conversions only, mismatches and missing members as DecodingErrors with the path.
    func testDecoderReadsCodableTypes() throws {
        func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
            try JSONValueDecoder().decode(type, from: JSONValue.parse(text, what: "test", file: nil, options: .strict))
        }
        let text = #"{"name":"n","count":3.0,"ratio":1,"small":0.1,"flags":[true,false],"shape":[null,4],"mode":"slow","note":null,"table":{"b":[1],"a":[255]}}"#
        let want = Doc(name: "n", count: 3, ratio: 1, small: 0.1, flags: [true, false], shape: [nil, 4], mode: .slow, note: nil, table: ["a": [255], "b": [1]])
        XCTAssertEqual(try decode(Doc.self, text), want)
        XCTAssertEqual(try decode(Doc.self, text), try JSONDecoder().decode(Doc.self, from: Data(text.utf8)), "as Foundation reads it")
        XCTAssertEqual(try JSONValueDecoder().decode(Doc.self, from: JSONValue(encoding: want)), want, "encoder and decoder round-trip")
        XCTAssertEqual(try decode([Int].self, "[9223372036854775807, -0.0]"), [Int.max, 0])
        let failures: [(String, String)] = [
            (#"{"name":"n"}"#, "count"),                                          // missing member
            (text.replacingOccurrences(of: "\"count\":3.0", with: "\"count\":3.5"), "count"),   // not an integer
            (text.replacingOccurrences(of: "\"mode\":\"slow\"", with: "\"mode\":\"medium\""), "mode"),
            (text.replacingOccurrences(of: "[1]", with: "[256]"), "table"),      // beyond UInt8
            (text.replacingOccurrences(of: "[true,false]", with: "[true,1]"), "flags"),
        ]
        for (bad, path) in failures {
            XCTAssertThrowsError(try decode(Doc.self, bad), bad) { e in
                XCTAssertTrue(e is DecodingError, "\(e)")
                XCTAssertTrue("\(e)".contains(path), "\(e)")
            }
        }
    }
}
