import Foundation
import WconvFormats
import WconvText
import XCTest
import WconvTestSupport

/// Ids, attention masks and token types equal to transformers' AutoTokenizer on the committed
/// corpus of tricky strings (fixtures/text/tokenizer_corpus.json), for each tokenizer folder.
final class TokenizerParityTests: XCTestCase {
    struct Case {
        var texts: [String]
        var pairs: [String]?
        var maxLength: Int?
    }

    func corpus() throws -> [Case] {
        let json = try TextFixtures.json("tokenizer_corpus.json")
        let strings = try XCTUnwrap(json["strings"]?.array?.compactMap(\.string))
        return try XCTUnwrap(json["cases"]?.array).map { c in
            Case(texts: c["texts"]!.array!.map { strings[$0.int!] },
                 pairs: c["pairs"]?.array?.map { strings[$0.int!] },
                 maxLength: c["max_length"]?.int)
        }
    }

    /// Runs every case; returns (matches, cases) and reports the first differences.
    @discardableResult
    func check(_ variant: String, folder: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Int, Int) {
        let tokenizer = try WordPieceTokenizer(model: folder)
        let expected = try TextFixtures.json("tokenizer_expected/\(variant).json")
        let cases = try corpus()
        let outputs = try XCTUnwrap(expected["cases"]?.array)
        XCTAssertEqual(cases.count, outputs.count, "corpus and expected output disagree; rerun gen_tokenizer.py")
        var matches = 0, reported = 0
        for (c, want) in zip(cases, outputs) {
            let got = try tokenizer.encodeBatch(c.texts, pairs: c.pairs, maxLength: c.maxLength)
            func rows(_ key: String) -> [[Int]] { want[key]!.array!.map { $0.array!.map { $0.int! } } }
            if got.inputIds == rows("input_ids") && got.attentionMask == rows("attention_mask") && got.tokenTypeIds == rows("token_type_ids") {
                matches += 1
            } else if reported < 10 {
                reported += 1
                let show = { (s: String) in s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : String(format: "\\u{%X}", $0.value) }.joined() }
                XCTFail("\(variant): \(c.texts.map(show)) pairs \(c.pairs?.map(show) ?? []) max \(c.maxLength.map(String.init) ?? "-"):\n got \(got.inputIds) \(got.tokenTypeIds)\nwant \(rows("input_ids")) \(rows("token_type_ids"))", file: file, line: line)
            }
        }
        print("tokenizer parity \(variant): \(matches) of \(cases.count) cases equal to transformers")
        XCTAssertEqual(matches, cases.count, file: file, line: line)
        return (matches, cases.count)
    }

    func testUncasedTokenizerJSON() throws { try check("uncased", folder: TextFixtures.path("tokenizers/uncased")) }
    func testCasedTokenizerJSON() throws { try check("cased", folder: TextFixtures.path("tokenizers/cased")) }
    func testVocabTxtAndConfigOnly() throws { try check("vocab_only", folder: TextFixtures.path("tokenizers/vocab_only")) }

    func testRealMiniLMTokenizer() throws {
        guard let dir = TextFixtures.miniLM() else { throw XCTSkip(TextFixtures.miniLMMissing) }
        try check("minilm", folder: dir)
    }

    /// The same real vocabulary read from vocab.txt + tokenizer_config.json alone gives the same ids.
    func testRealMiniLMFromVocabTxt() throws {
        guard let dir = TextFixtures.miniLM() else { throw XCTSkip(TextFixtures.miniLMMissing) }
        let tmp = TempDir()
        for f in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: tmp.path + "/" + f)
        }
        try check("minilm", folder: tmp.path)
    }
}
