import Foundation
import WconvFormats
import WconvTensor
import WconvText
import XCTest
import WconvTestSupport

/// Options read from the model folder, and the refusals of files wconv would tokenise wrongly.
final class TokenizerConfigTests: XCTestCase {
    let uncased = TextFixtures.path("tokenizers/uncased")

    /// A copy of the uncased folder whose tokenizer_config.json gets `extra` keys.
    func uncasedCopy(_ tmp: TempDir, extra: [String: Any] = [:]) throws -> String {
        try FileManager.default.copyItem(atPath: uncased + "/tokenizer.json", toPath: tmp.path + "/tokenizer.json")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: uncased + "/tokenizer_config.json"))) as? [String: Any])
        config.merge(extra) { $1 }
        _ = tmp.write("tokenizer_config.json", Array(try JSONSerialization.data(withJSONObject: config)))
        return tmp.path
    }

    func testLeftPaddingAndTruncationEqualTransformers() throws {
        let want = try TextFixtures.json("tokenizer_expected/uncased_left.json")
        let tmp = TempDir()
        let tokenizer = try WordPieceTokenizer(model: try uncasedCopy(tmp, extra: ["padding_side": "left", "truncation_side": "left"]))
        XCTAssertEqual(tokenizer.config.paddingSide, .left)
        let corpus = try TextFixtures.json("tokenizer_corpus.json")
        let strings = try XCTUnwrap(corpus["strings"]?.array?.compactMap(\.string))
        let cases = try XCTUnwrap(corpus["cases"]?.array).dropFirst(try XCTUnwrap(want["first_case"]?.int))
        let outputs = try XCTUnwrap(want["cases"]?.array)
        XCTAssertEqual(cases.count, outputs.count)
        var matches = 0
        for (c, w) in zip(cases, outputs) {
            let got = try tokenizer.encodeBatch(c["texts"]!.array!.map { strings[$0.int!] }, pairs: c["pairs"]?.array?.map { strings[$0.int!] },
                                                maxLength: c["max_length"]?.int)
            func rows(_ key: String) -> [[Int]] { w[key]!.array!.map { $0.array!.map { $0.int! } } }
            if got.inputIds == rows("input_ids") && got.attentionMask == rows("attention_mask") && got.tokenTypeIds == rows("token_type_ids") { matches += 1 }
        }
        XCTAssertEqual(matches, cases.count)
    }

    func testConfigOverridesTheNormalizerAndSetsTheLimit() throws {
        let tmp = TempDir()
        let t = try WordPieceTokenizer(model: try uncasedCopy(tmp, extra: ["do_lower_case": false, "model_max_length": 5]))
        XCTAssertFalse(t.config.normalizer.lowercase)
        XCTAssertFalse(t.config.normalizer.stripsAccents, "strip_accents null follows do_lower_case")
        XCTAssertEqual(t.config.modelMaxLength, 5)
        let b = try t.encodeBatch(["the quick brown fox jumps"])
        XCTAssertEqual(b.length, 5)
        XCTAssertEqual(b.truncatedCount, 1)
        // The generic class takes tokenizer.json's normaliser as it is (transformers 5 does too).
        let tmp3 = TempDir()
        let generic = try WordPieceTokenizer(model: try uncasedCopy(tmp3, extra: ["do_lower_case": false, "tokenizer_class": "PreTrainedTokenizerFast"]))
        XCTAssertTrue(generic.config.normalizer.lowercase)
        // transformers writes 1e30 for "no limit".
        let tmp2 = TempDir()
        let unlimited = try WordPieceTokenizer(model: try uncasedCopy(tmp2, extra: ["model_max_length": 1e30]))
        XCTAssertNil(unlimited.config.modelMaxLength)
    }

    func testTensorsAreInt64BatchByLength() throws {
        let t = try WordPieceTokenizer(model: uncased)
        let b = try t.encodeBatch(["hello world", "hi"], pairs: ["a", "b c"])
        let tensors = b.tensors()
        for name in ["input_ids", "attention_mask", "token_type_ids"] {
            let x = try XCTUnwrap(tensors[name])
            XCTAssertEqual(x.dtype, .i64)
            XCTAssertEqual(x.shape, [2, b.length])
        }
    }

    func testVocabTxtRefusals() throws {
        let tmp = TempDir()
        _ = tmp.write("vocab.txt", Array("[PAD]\n[UNK]\n".utf8) + [0x61, 0xFF, 0x0A] + Array("[CLS]\n".utf8))
        XCTAssertThrowsError(try WordPieceTokenizer(model: tmp.path)) { e in
            XCTAssertTrue("\(e)".contains("line 3 is not valid UTF-8"), "\(e)")
        }
        let tmp2 = TempDir()
        _ = tmp2.write("vocab.txt", "[PAD]\nhello\n[CLS]\n[SEP]\n")
        XCTAssertThrowsError(try WordPieceTokenizer(model: tmp2.path)) { e in
            XCTAssertTrue("\(e)".contains("unknown token \"[UNK]\""), "\(e)")
        }
        // CRLF line ends are read as the tokens without "\r".
        let tmp3 = TempDir()
        _ = tmp3.write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n")
        XCTAssertEqual(try WordPieceTokenizer(model: tmp3.path).encodeBatch(["Hello"]).inputIds, [[2, 4, 3]])
    }

    func testTokenizerJSONRefusals() throws {
        let json = try String(contentsOfFile: uncased + "/tokenizer.json", encoding: .utf8)
        func refused(_ edit: (String) -> String, _ expected: String, line: UInt = #line) {
            let tmp = TempDir()
            _ = tmp.write("tokenizer.json", edit(json))
            XCTAssertThrowsError(try WordPieceTokenizer(model: tmp.path), line: line) { e in
                XCTAssertEqual((e as? WconvError)?.kind, .invalidInput, line: line)
                XCTAssertTrue("\(e)".contains(expected), "\(e)", line: line)
                XCTAssertTrue("\(e)".contains("tokenizer.json"), "names the file: \(e)", line: line)
            }
        }
        refused({ $0.replacingOccurrences(of: "\"type\": \"WordPiece\"", with: "\"type\": \"BPE\"") }, "the tokenizer model is BPE")
        refused({ $0.replacingOccurrences(of: "\"type\": \"BertNormalizer\"", with: "\"type\": \"NFKC\"") }, "normalizer NFKC is not supported")
        refused({ $0.replacingOccurrences(of: "\"type\": \"BertPreTokenizer\"", with: "\"type\": \"Metaspace\"") }, "pre_tokenizer Metaspace")
        refused({ String($0.dropLast(20)) }, "not valid JSON")
        refused({ $0.replacingOccurrences(of: "\"id\": \"[CLS]\",\n          \"type_id\"", with: "\"id\": \"[XX]\",\n          \"type_id\"") }, "special token \"[XX]\" is not in special_tokens")
        let tmp = TempDir()
        _ = tmp.write("tokenizer.json", Array(json.utf8.prefix(40)) + [0xC3, 0x28] + Array(json.utf8.dropFirst(40)))
        XCTAssertThrowsError(try WordPieceTokenizer(model: tmp.path)) { e in XCTAssertTrue("\(e)".contains("not valid UTF-8"), "\(e)") }
    }

    func testMaxLengthBelowTheSpecialTokensIsAUsageError() throws {
        let t = try WordPieceTokenizer(model: uncased)
        XCTAssertThrowsError(try t.encodeBatch(["a"], pairs: ["b"], maxLength: 2)) { e in
            XCTAssertEqual((e as? WconvError)?.kind, .usage)
            XCTAssertTrue("\(e)".contains("3 special tokens"), "\(e)")
        }
        // Exactly the special tokens: both texts are emptied, as HF does.
        XCTAssertEqual(try t.encodeBatch(["a"], pairs: ["b"], maxLength: 3).inputIds, [[2, 3, 3]])
    }
}
