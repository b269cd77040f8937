import Foundation
import WconvFormats
import WconvTensor
import WconvText
import XCTest

/// Every Unicode scalar through the normaliser and pre-tokeniser, against what HF's
/// BertNormalizer and BertPreTokenizer do with it (fixtures/text/unicode_classes.json).
final class UnicodeClassesTests: XCTestCase {
    func testEveryScalarAgainstHF() throws {
        let want = try TextFixtures.json("unicode_classes.json")
        let clean = BertNormalizer(cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false)
        let lower = BertNormalizer(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true)
        let strip = BertNormalizer(cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false)
        let chinese = BertNormalizer(cleanText: false, handleChineseChars: true, stripAccents: false, lowercase: false)
        var sets: [String: [UInt32]] = ["removed": [], "to_space": [], "punctuation": [], "split_whitespace": [], "chinese": []]
        var maps: [String: (count: Int, text: [UInt8])] = ["lowercase": (0, []), "strip_accents": (0, [])]
        for v in UInt32(0)...0x10FFFF {
            guard let c = Unicode.Scalar(v) else { continue }
            let cleaned = clean.normalize([c])
            if cleaned.isEmpty { sets["removed"]!.append(v) } else if cleaned == [" "] && c != " " { sets["to_space"]!.append(v) }
            if chinese.normalize([c]) != [c] { sets["chinese"]!.append(v) }
            switch BertPreTokenizer.split(["a", c, "b"]).count {
            case 3: sets["punctuation"]!.append(v)
            case 2: sets["split_whitespace"]!.append(v)
            default: break
            }
            for (key, n) in [("lowercase", lower), ("strip_accents", strip)] {
                let m = n.normalize([c])
                if m != [c] {
                    maps[key]!.count += 1
                    maps[key]!.text += Array("\(hex(v)):\(m.map { hex($0.value) }.joined(separator: " "))\n".utf8)
                }
            }
        }
        for (key, got) in sets.sorted(by: { $0.key < $1.key }) {
            let ranges = try XCTUnwrap(want[key]?.array).map { ($0[0]!.int!, $0[1]!.int!) }
            let expected = ranges.flatMap { UInt32($0.0)...UInt32($0.1) }
            let only = Set(got).symmetricDifference(expected).sorted()
            XCTAssert(only.isEmpty, "\(key): \(only.count) scalars differ from HF, first U+\(only.first.map(hex) ?? "")")
        }
        for (key, got) in maps.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(got.count, want[key]?["count"]?.int, "\(key): changed scalars")
            XCTAssertEqual(SHA256.hex(of: got.text), want[key]?["sha256"]?.string, "\(key): mapping digest")
        }
    }

    private func hex(_ v: UInt32) -> String { String(v, radix: 16, uppercase: true) }
}
