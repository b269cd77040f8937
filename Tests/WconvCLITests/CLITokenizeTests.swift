import Foundation
import XCTest
import WconvTestSupport

/// `wconv tokenize`: the JSON a user gets equals transformers' output for the same call.
final class CLITokenizeTests: XCTestCase {
    let folder = CLI.fixture("text/tokenizers/uncased")

    /// Corpus cases (texts, pairs, max_length) with transformers' output, from the fixtures.
    func cases() throws -> [(texts: [String], pairs: [String]?, maxLength: Int?, want: [String: Any])] {
        let corpus = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("text/tokenizer_corpus.json")))) as? [String: Any])
        let strings = try XCTUnwrap(corpus["strings"] as? [String])
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("text/tokenizer_expected/uncased.json")))) as? [String: Any])
        let outputs = try XCTUnwrap(expected["cases"] as? [[String: Any]])
        return zip(try XCTUnwrap(corpus["cases"] as? [[String: Any]]), outputs).map { c, want in
            ((c["texts"] as! [Int]).map { strings[$0] }, (c["pairs"] as? [Int])?.map { strings[$0] }, c["max_length"] as? Int, want)
        }
    }

    func testBatchesAndPairsEqualTransformers() throws {
        // Command-line arguments cannot hold NUL; every other case can be passed.
        let usable = try cases().filter { c in !(c.texts + (c.pairs ?? [])).contains { $0.unicodeScalars.contains("\0") } }
        let picked = [usable.first { $0.texts.count > 2 && $0.pairs == nil }, usable.first { $0.pairs != nil && $0.maxLength != nil },
                      usable.first { $0.pairs != nil && $0.maxLength == nil && $0.texts.count > 1 }].compactMap { $0 }
        XCTAssertEqual(picked.count, 3)
        for c in picked {
            var args = ["tokenize", folder, "--json"]
            for t in c.texts { args += ["--text", t] }
            for p in c.pairs ?? [] { args += ["--text-pair", p] }
            if let m = c.maxLength { args += ["--max-length", String(m)] }
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 0, r.stderr)
            let got = try CLI.json(r)
            for key in ["input_ids", "attention_mask", "token_type_ids"] {
                XCTAssertEqual(got[key] as? [[Int]], c.want[key] as? [[Int]], "\(key) for \(c.texts)")
            }
        }
    }

    /// MODEL may be the weights file; the tokenizer files are read from beside it.
    func testWeightsFileWithTokenizerBeside() throws {
        let dirTemp = TempDir()
        let dir = dirTemp.path
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: folder + "/" + f, toPath: dir + "/" + f)
        }
        FileManager.default.createFile(atPath: dir + "/model.safetensors", contents: Data())
        let r = try CLI.run(["tokenize", dir + "/model.safetensors", "--text", "Hello, world!", "--text", "hi", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = try XCTUnwrap(try CLI.json(r)["input_ids"] as? [[Int]])
        XCTAssertEqual(ids.count, 2)
        XCTAssertEqual(ids[0].count, ids[1].count, "padded to the longest text")
        XCTAssertEqual(ids[1].last, 0, "[PAD] is id 0")
    }

    func testRefusals() throws {
        let emptyTemp = TempDir()
        let empty = emptyTemp.path
        var r = try CLI.run(["tokenize", empty, "--text", "x"])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("tokenizer.json"), r.stderr)
        r = try CLI.run(["tokenize", folder, "--text", "a", "--text", "b", "--text-pair", "c"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--text-pair"), r.stderr)
        r = try CLI.run(["tokenize", folder, "--text", "a", "--max-length", "1"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("special tokens"), r.stderr)
        r = try CLI.run(["tokenize", folder])
        XCTAssertEqual(r.status, 2)
    }
}
