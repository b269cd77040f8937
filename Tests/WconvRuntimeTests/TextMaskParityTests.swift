import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime
import WconvTestSupport

/// Padded text batches through BERT, DistilBERT and a MiniLM-shaped BERT: outputs and parameter
/// gradients against transformers on the same padded batch (tools/fixtures/text/gen_text_models.py
/// wrote the models, the tokenizer's ids and mask, torch's outputs and autograd gradients).
final class TextMaskParityTests: XCTestCase {
    static let dir = Repo.fixtures.appendingPathComponent("text/models")

    struct Case {
        var graph: ModelGraph
        var expected: [String: Tensor]
        var outputs: [String]
        var gradients: [String]
        /// The graph's inputs from the fixture (HF names; DistilBERT has no token_type_ids).
        var feeds: [String: Tensor]
    }

    static func load(_ name: String) throws -> Case {
        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("cases.json"))) as? [String: Any])
        let c = try XCTUnwrap(cases[name] as? [String: Any], "no case \(name)")
        let path = dir.appendingPathComponent("\(c["folder"] as! String)/model.safetensors").path
        let bundle = try SafetensorsReader.read(path: path)
        let graph = try GraphImporter.importGraph(bundle: bundle, sourcePath: path, configJSON: ArchitectureRecognizer.configBeside(path: path)).graph
        var expected: [String: Tensor] = [:]
        for (k, v) in try SafetensorsReader.read(path: dir.appendingPathComponent("\(name).expected.safetensors").path).tensors { expected[k] = v }
        var feeds: [String: Tensor] = [:]
        for input in graph.inputs { feeds[input.name] = try XCTUnwrap(expected[input.name], "fixture lacks \(input.name)") }
        return Case(graph: graph, expected: expected, outputs: c["outputs"] as! [String], gradients: c["gradients"] as! [String], feeds: feeds)
    }

    func checkForward(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try Self.load(name)
        let mask = c.expected["attention_mask"]!.floats()
        XCTAssertTrue(mask.contains(0), "\(name): the batch is padded", file: file, line: line)
        let outs = try InferenceSession(graph: c.graph).run(c.feeds)
        for o in c.outputs {
            let got = try XCTUnwrap(outs[o], "\(name) has no output \(o)", file: file, line: line)
            XCTAssertEqual(got.shape, c.expected[o]!.shape, "\(name) \(o)", file: file, line: line)
            assertClose(got.floats(), c.expected[o]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) \(o)", file: file, line: line)
        }
    }

    /// loss = Σ OUTPUT · W (W fixed by the fixture): gradients of the listed parameters equal torch's.
    func checkBackward(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try Self.load(name)
        let s = try TrainingSession(graph: c.graph, trainable: Set(c.gradients))
        _ = try s.forward(c.feeds, training: false)
        var dy: [String: Tensor] = [:]
        for o in c.outputs { dy[o] = c.expected["dloss_d." + o]! }
        let grads = try s.backward(outputGradients: dy)
        for p in c.gradients {
            let want = c.expected["grad." + p]!.floats()
            let got = try XCTUnwrap(grads[p], "\(name): no gradient for \(p)", file: file, line: line).floats()
            // Relative to the gradient's scale: entries near zero sum many cancelling terms.
            let scale = want.map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(name) \(p): torch's gradient is not all zeros", file: file, line: line)
            assertClose(got, want, rtol: 1e-4, atol: 1e-4 * scale, "\(name) grad \(p)", file: file, line: line)
        }
    }

    func testBertSequenceClassificationPaddedPairs() throws { try checkForward("bert_cls") }
    func testBertModelWithPoolerTruncatedBatch() throws { try checkForward("bert_model") }
    func testDistilBertSequenceClassification() throws { try checkForward("distilbert_cls") }
    func testMiniLMShapedEncoder() throws { try checkForward("minilm_st") }

    /// Hidden dropout where transformers applies it in training (config hidden_dropout_prob /
    /// dropout): after the embeddings' LayerNorm, after BERT's attention output projection, after
    /// every feed-forward output; DistilBERT has none after the attention output projection.
    func testHiddenDropoutWhereTransformersPlacesIt() throws {
        func dropouts(_ name: String) throws -> [String: Double] {
            var out: [String: Double] = [:]
            for n in try Self.load(name).graph.nodes where n.op == .dropout { out[n.name] = n.float("ratio") }
            return out
        }
        let bert = try dropouts("bert_model")
        XCTAssertEqual(bert["embeddings.dropout"], 0.1)
        XCTAssertEqual(bert["encoder.layer.0.attention.output.dense.dropout"], 0.1)
        XCTAssertEqual(bert["encoder.layer.1.output.dense.dropout"], 0.1)
        let layers = Set(bert.keys.compactMap { $0.split(separator: ".").dropFirst(2).first }).count
        XCTAssertEqual(bert.count, 1 + 2 * layers, "\(bert.keys.sorted())")
        let distil = try dropouts("distilbert_cls")
        XCTAssertNotNil(distil["distilbert.transformer.layer.0.ffn.lin2.dropout"], "\(distil.keys.sorted())")
        XCTAssertFalse(distil.keys.contains { $0.contains("out_lin") }, "\(distil.keys.sorted())")
        // Attention probabilities: attention_probs_dropout_prob (BERT) / attention_dropout (DistilBERT).
        for name in ["bert_model", "distilbert_cls"] {
            let ratios = try Self.load(name).graph.nodes.filter { $0.op == .attention }.map { $0.float("dropout") }
            XCTAssertFalse(ratios.isEmpty, name)
            XCTAssertEqual(Set(ratios), [0.1], name)
        }
    }

    func testBertClassifierGradients() throws { try checkBackward("bert_cls") }
    func testBertModelGradients() throws { try checkBackward("bert_model") }
    func testDistilBertGradients() throws { try checkBackward("distilbert_cls") }
    func testMiniLMGradients() throws { try checkBackward("minilm_st") }

    /// The mask is what makes a padded row equal to the same text alone: without it (all ones) the
    /// padded rows change, with it each row equals its unpadded run.
    func testPaddedRowEqualsTheTextAlone() throws {
        let c = try Self.load("bert_cls")
        let sess = try InferenceSession(graph: c.graph)
        let batch = try sess.run(c.feeds)["logits"]!.floats()
        let ids = c.feeds["input_ids"]!, mask = c.feeds["attention_mask"]!.floats(), types = c.feeds["token_type_ids"]!
        let (b, t) = (ids.shape[0], ids.shape[1])
        let classes = batch.count / b
        var padded = 0
        for r in 0..<b {
            let n = Int(mask[r * t ..< (r + 1) * t].reduce(0, +))
            if n < t { padded += 1 }
            func row(_ x: Tensor) -> Tensor { Tensor(shape: [1, n], floats: Array(x.floats()[r * t ..< r * t + n])) }
            let alone = try sess.run(c.graph.unpaddedTextFeeds(["input_ids": row(ids), "token_type_ids": row(types)]).feeds)["logits"]!.floats()
            assertClose(alone, Array(batch[r * classes ..< (r + 1) * classes]), rtol: 1e-4, atol: 1e-5, "row \(r) alone")
        }
        XCTAssertGreaterThan(padded, 1)
        var unmasked = c.feeds
        unmasked["attention_mask"] = c.graph.unpaddedTextFeeds(["input_ids": ids]).feeds["attention_mask"]
        let wrong = try sess.run(unmasked)["logits"]!.floats()
        XCTAssertGreaterThan(zip(wrong, batch).map { abs($0 - $1) }.max() ?? 0, 1e-3, "attending to padding changes padded rows")
    }

    /// Exported to ONNX (attention decomposed, positions as Shape → Range) and imported back, the
    /// graphs still give transformers' outputs on the padded batch, with the same three inputs.
    func testONNXExportKeepsMasksAndTokenTypes() throws {
        for name in ["bert_cls", "distilbert_cls", "bert_model"] {
            let c = try Self.load(name)
            let tmp = TempDir()
            let path = tmp.file("\(name).onnx")
            try ONNXGraphExporter.export(c.graph, to: path)
            let g = try GraphImporter.importGraph(path: path).graph
            XCTAssertEqual(Set(g.inputs.map(\.name)), Set(c.graph.inputs.map(\.name)), name)
            let outs = try InferenceSession(graph: g).run(c.feeds)
            for o in c.outputs {
                assertClose(try XCTUnwrap(outs[o], "\(name) ONNX output \(o)").floats(), c.expected[o]!.floats(), rtol: 1e-4, atol: 1e-5, "\(name) ONNX \(o)")
            }
        }
    }

    /// The graph's word embedding carries transformers' padding_idx: the [PAD] row gets no gradient
    /// even when the loss reads padded positions (torch's fixture gradient for that row is zero).
    func testPaddingRowGetsNoGradient() throws {
        let c = try Self.load("bert_model")
        let p = "embeddings.word_embeddings.weight"
        XCTAssertEqual(c.graph.nodes.first { $0.inputs.contains(p) }?.int("paddingIdx"), 0)
        let want = c.expected["grad." + p]!
        XCTAssertEqual(Array(want.floats()[0..<want.shape[1]]), [Float](repeating: 0, count: want.shape[1]))
    }
}
