import Foundation
import OrderedCollections
import XCTest
@testable import WconvTraining
import WconvFormats
import WconvGraph
import WconvRuntime
import WconvTensor
import WconvText
import WconvTestSupport

/// Text fine-tuning against transformers (fixtures/text/train, tools/fixtures/text/gen_text_training.py):
/// the trajectory of transformers' loop, the head transformers adds, the Hugging Face folder, and the
/// data pipeline (dynamic padding, bucketing, truncation counts).
final class TextTrainingTests: XCTestCase {
    static let dir = Repo.fixtures.appendingPathComponent("text/train").path
    static func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    func data(_ name: String, maxLength: Int, classes: [String]? = nil) throws -> TokenizedTextSet {
        let tok = try WordPieceTokenizer(model: Self.path("bert_cls"))
        return try TokenizedTextSet(TextDataset.read(Self.path(name), classes: classes), tokenizer: tok, maxLength: maxLength)
    }

    /// transformers' loop (same weights, file order, batches of 8 padded to their longest, AdamW
    /// with the plan's groups, linear warm-up + decay): every step's loss and the final weights.
    func testTrajectoryMatchesTransformersLoop() throws {
        let ref = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.path("trajectory.json")))) as? [String: Any])
        let model = try TextTrainingModel.load(Self.path("bert_cls"))
        let train = try data("train.csv", maxLength: ref["max_length"] as! Int)
        XCTAssertEqual(train.truncatedCount, ref["truncated"] as? Int)
        var c = TrainingConfig()
        c.mode = .finetune
        c.epochs = ref["epochs"] as! Int
        c.batchSize = ref["batch_size"] as! Int
        c.lr = (ref["head_lr"] as! NSNumber).doubleValue
        c.backboneLR = (ref["encoder_lr"] as! NSNumber).doubleValue
        c.weightDecay = (ref["weight_decay"] as! NSNumber).doubleValue
        c.warmupRatio = (ref["warmup_ratio"] as! NSNumber).doubleValue
        c.schedule = "warmup-linear"
        c.maxGradNorm = (ref["max_grad_norm"] as! NSNumber).doubleValue
        c.shuffle = false
        c.head = "keep"
        c.text = true
        c.groups = model.groupSpec
        let graph = try TextHead.attach(model, classes: train.classes, seed: 0, keep: true)
        let trainer = try Trainer(graph: graph, config: c, train: train, val: nil, augment: false, log: { _ in })
        trainer.computeBaseline = false
        // Per-step losses from the running mean the progress callback reports.
        var losses: [Double] = [], last = (seen: 0, mean: 0.0)
        trainer.progress = { seen, _, mean in
            if seen < last.seen { last = (0, 0) }
            losses.append((mean * Double(seen) - last.mean * Double(last.seen)) / Double(seen - last.seen))
            last = (seen, mean)
        }
        let r = try trainer.run()
        let want = doubles(ref["losses"])
        XCTAssertEqual(losses.count, want.count)
        for (i, (a, b)) in zip(losses, want).enumerated() { XCTAssertEqual(a, b, accuracy: 1e-4, "step \(i + 1)") }
        let finals = try XCTUnwrap(ref["final"] as? [String: Any])
        let exported = HFExport.stateDict(r.graph, family: .bert)
        for (name, values) in finals {
            let t = try XCTUnwrap(exported[name], name)
            XCTAssertLessThan(relErr(t.floats(), doubles(values)), 1e-4, name)
        }
    }

    /// A headless encoder gets BertForSequenceClassification's head on the pooler output; the
    /// export loads under transformers' names with the tokenizer files beside it.
    func testHeadlessEncoderGetsHeadAndExportsHFNames() throws {
        let tmp = TempDir()
        // The fixture's encoder alone, as BertModel.save_pretrained writes it (no `bert.` prefix).
        var bundle = try SafetensorsReader.read(path: Self.path("bert_cls/model.safetensors"))
        var tensors = OrderedDictionary<String, Tensor>()
        for (k, v) in bundle.tensors where k.hasPrefix("bert.") { tensors[String(k.dropFirst(5))] = v }
        bundle.tensors = tensors
        let enc = tmp.file("encoder")
        try FileManager.default.createDirectory(atPath: enc, withIntermediateDirectories: true)
        try SafetensorsWriter.write(bundle, to: enc + "/model.safetensors")
        for f in ["vocab.txt", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: Self.path("bert_cls/" + f), toPath: enc + "/" + f)
        }
        // BertModel's config: no head, no labels (hidden 32 needs its head count from here).
        var cfg = try JSONValue.parse(String(decoding: Data(contentsOf: URL(fileURLWithPath: Self.path("bert_cls/config.json"))), as: UTF8.self), what: "config", file: nil)
        for k in ["architectures", "id2label", "label2id"] { cfg[k] = nil }
        try Data(cfg.text(.pythonIndented).utf8).write(to: URL(fileURLWithPath: enc + "/config.json"))
        let model = try TextTrainingModel.load(enc)
        XCTAssertNil(model.labels)
        XCTAssertEqual(model.graph.outputs.map(\.name), ["last_hidden_state", "pooler_output"])
        let g = try TextHead.attach(model, classes: ["a", "b"], seed: 1)
        XCTAssertEqual(g.outputs.map(\.name), ["logits"])
        XCTAssertEqual(g.parameters["classifier.weight"]?.shape, [2, 32])
        XCTAssertEqual(g.parameters["classifier.bias"]?.floats(), [0, 0])
        let w = try XCTUnwrap(g.parameters["classifier.weight"]?.floats())
        let std = (w.map { Double($0 * $0) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(std, 0.2, accuracy: 0.06, "transformers' init: normal(0, initializer_range = 0.2 in this config)")
        let out = tmp.file("out")
        try HFExport.write(g, model: model, classes: ["a", "b"], to: out)
        let written = try SafetensorsReader.read(path: out + "/model.safetensors")
        XCTAssertEqual(written.metadata["format"], "pt")
        XCTAssertEqual(Set(written.tensors.keys), Set(bundle.tensors.keys.map { "bert." + $0 } + ["classifier.weight", "classifier.bias"]))
        let config = try JSONValue.parse(String(decoding: Data(contentsOf: URL(fileURLWithPath: out + "/config.json")), as: UTF8.self), what: "config", file: nil)
        XCTAssertEqual(config["architectures"], .array(["BertForSequenceClassification"]))
        XCTAssertEqual(config["num_attention_heads"]?.int, 4)
        XCTAssertEqual(config["id2label"]?["1"]?.string, "b")
        XCTAssertEqual(config["label2id"]?["a"]?.int, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/vocab.txt"))
        // Read back: the same logits as the graph that was written.
        let back = try TextTrainingModel.load(out)
        XCTAssertEqual(back.labels, ["a", "b"])
        let val = try data("val.jsonl", maxLength: 32, classes: ["food", "sports", "weather"])
        let x = try val.inputs(Array(0..<8), names: g.inputs.map(\.name))
        let a = try InferenceSession(graph: g).run(x)["logits"]!.floats()
        let b = try InferenceSession(graph: back.graph).run(x)["logits"]!.floats()
        XCTAssertEqual(a, b)
    }

    /// Fine-tuning writes a Hugging Face folder that reads back with the labels and the same
    /// logits. With WCONV_INTEROP_OUT set, the folder and wconv's validation logits are left in
    /// $WCONV_INTEROP_OUT/text/ for tools/interop/check_text_hf.py (transformers loads the folder).
    func testFinetunedFolderReadsBack() throws {
        let model = try TextTrainingModel.load(Self.path("bert_cls"))
        let train = try data("train.csv", maxLength: 32)
        let val = try data("val.jsonl", maxLength: 32, classes: train.classes)
        var c = TrainingConfig()
        c.mode = .finetune
        c.epochs = 2
        c.batchSize = 8
        c.lr = 1e-2
        c.backboneLR = 1e-3
        c.schedule = "warmup-linear"
        c.text = true
        c.head = "keep"
        c.groups = model.groupSpec
        let g = try TextHead.attach(model, classes: train.classes, seed: 0)
        let t = try Trainer(graph: g, config: c, train: train, val: val, augment: false, log: { _ in })
        t.computeBaseline = false
        let r = try t.run()
        let tmp = TempDir()
        let out = ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"].map { $0 + "/text/bert_cls_finetuned" } ?? tmp.file("out")
        try HFExport.write(r.graph, model: model, classes: train.classes, to: out)
        let back = try TextTrainingModel.load(out)
        XCTAssertEqual(back.labels, train.classes)
        let m = try Trainer.evaluate(graph: back.graph, data: val, classes: train.classes)
        XCTAssertEqual(m.accuracy, try XCTUnwrap(r.metrics?.accuracy), accuracy: 1e-9)
        let (logits, rows) = try Trainer.outputs(graph: back.graph, data: val, width: train.classes.count, threads: 2, batchSize: 8)
        guard ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"] != nil else { return }
        let doc: [String: Any] = ["rows": rows, "logits": logits.map(Double.init), "accuracy": m.accuracy, "classes": train.classes,
                                  "max_length": 32, "val": Self.path("val.jsonl")]
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: out + "/../wconv_val.json"))
    }

    /// DistilBERT gets DistilBertForSequenceClassification's head (token 0 → pre_classifier → ReLU →
    /// dropout → classifier) and exports under `distilbert.`. With WCONV_INTEROP_OUT set, the folder
    /// and its logits on two unpadded rows are left for tools/interop/check_text_hf.py.
    func testDistilBERTHeadAndExport() throws {
        let model = try TextTrainingModel.load(Repo.fixtures.appendingPathComponent("models/distilbert").path)
        XCTAssertEqual(model.family, .distilbert)
        XCTAssertEqual(model.groupSpec, "embeddings=embeddings,layer.0=transformer.layer.0,layer.1=transformer.layer.1,head=pre_classifier|classifier")
        let g = try TextHead.attach(model, classes: ["x", "y", "z"], seed: 2)
        XCTAssertEqual(g.nodes.first { $0.name == "dropout" }?.attributes["ratio"]?.floatValue, 0.2, "seq_classif_dropout's default")
        let grouping = try LayerGrouping(graph: g, userGroups: model.groupSpec)
        XCTAssertEqual(grouping.head.parameters.sorted(), ["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"])
        let ids: [[Int64]] = [[2, 5, 9, 14, 3], [2, 7, 7, 20, 3]]
        var feeds: [String: Tensor] = [:]
        for i in g.inputs {
            let rows = i.name == "input_ids" ? ids : ids.map { $0.map { _ in i.name == "attention_mask" ? 1 : 0 } }
            feeds[i.name] = try Tensor(dtype: .i64, shape: [2, 5], storage: Storage(array: rows.flatMap { $0 }))
        }
        let logits = try XCTUnwrap(InferenceSession(graph: g).run(feeds)["logits"])
        XCTAssertEqual(logits.shape, [2, 3])
        let tmp = TempDir()
        let out = ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"].map { $0 + "/text/distilbert_cls" } ?? tmp.file("d")
        try HFExport.write(g, model: model, classes: ["x", "y", "z"], to: out)
        let names = try SafetensorsReader.read(path: out + "/model.safetensors").tensors.keys
        XCTAssertTrue(names.allSatisfy { $0.hasPrefix("distilbert.") || $0.hasPrefix("classifier.") || $0.hasPrefix("pre_classifier.") }, "\(names)")
        XCTAssertTrue(names.contains("distilbert.transformer.layer.1.ffn.lin2.weight"))
        guard ProcessInfo.processInfo.environment["WCONV_INTEROP_OUT"] != nil else { return }
        let doc: [String: Any] = ["input_ids": ids.map { $0.map(Int.init) }, "logits": logits.floats().map(Double.init)]
        try JSONSerialization.data(withJSONObject: doc).write(to: URL(fileURLWithPath: out + "/../distilbert_logits.json"))
    }

    /// Buckets hold texts of similar length, every row once per epoch, the same order for the same
    /// seed; without shuffling, the file order.
    func testLengthBucketing() throws {
        let train = try data("train.csv", maxLength: 32)
        let a = train.epochBatches(epoch: 0, batchSize: 8, shuffle: true, seed: 3)
        XCTAssertEqual(a.flatMap { $0 }.sorted(), Array(0..<train.count))
        XCTAssertEqual(a, train.epochBatches(epoch: 0, batchSize: 8, shuffle: true, seed: 3))
        XCTAssertNotEqual(a, train.epochBatches(epoch: 1, batchSize: 8, shuffle: true, seed: 3))
        XCTAssertLessThan(train.paddingFraction(a), train.paddingFraction(TokenizedTextSet.chunks(Array(0..<train.count), 8)) / 2)
        XCTAssertEqual(train.epochBatches(epoch: 0, batchSize: 8, shuffle: false, seed: 3), TokenizedTextSet.chunks(Array(0..<train.count), 8))
        // A batch is padded to its own longest row, with mask 0 on the padding.
        let x = try train.inputs([2, 3], names: ["input_ids", "attention_mask"])
        let n = max(train.length(2), train.length(3))
        XCTAssertEqual(x["input_ids"]?.shape, [2, n])
        XCTAssertEqual(x["attention_mask"]?.floats().reduce(0, +), Float(train.length(2) + train.length(3)))
        XCTAssertNil(x["token_type_ids"])
        // Pairs: the second text has token type 1.
        let tok = try WordPieceTokenizer(model: Self.path("bert_cls"))
        let text = try TextDataset.read(Repo.fixtures.appendingPathComponent("text/data/tricky.tsv").path,
                                        columns: TextColumns(text: "sentence", label: "label", pair: "sentence2"))
        let pairs = try TokenizedTextSet(text, tokenizer: tok, maxLength: 32)
        let p = try pairs.inputs([0], names: ["input_ids", "token_type_ids"])
        let types = try XCTUnwrap(p["token_type_ids"]?.floats())
        let first = try tok.encode(text.examples[0].text, pair: text.examples[0].pair, maxLength: 32).encoding
        XCTAssertEqual(types, first.typeIds.map(Float.init))
        XCTAssertTrue(types.contains(1))
    }

    /// Every mode trains a text model; feature extraction caches the [CLS] features once.
    func testModesRunAndFeatureExtractionCaches() throws {
        let model = try TextTrainingModel.load(Self.path("bert_cls"))
        let train = try data("train.csv", maxLength: 32)
        let val = try data("val.jsonl", maxLength: 32, classes: train.classes)
        for mode in [TrainingMode.featureExtract, .finetune, .progressive] {
            var c = TrainingConfig()
            c.mode = mode
            c.epochs = mode == .progressive ? 4 : 2
            c.batchSize = 8
            c.text = true
            c.head = "keep"
            c.groups = model.groupSpec
            c.schedule = "warmup-linear"
            var lines: [String] = []
            let g = try TextHead.attach(model, classes: train.classes, seed: 0)
            let t = try Trainer(graph: g, config: c, train: train, val: val, augment: false, log: { lines.append($0) })
            t.computeBaseline = false
            let r = try t.run()
            // A run may stop early when fine-tuning falls below its baseline (the image guard rail).
            XCTAssertTrue(r.history.count == c.epochs || r.guardTripped, "\(mode): \(r.history.count) epochs, \(r.stopped ?? "")")
            XCTAssertNotNil(r.metrics, "\(mode)")
            if mode == .featureExtract {
                XCTAssertTrue(lines.contains { $0.contains("cached frozen features at 'bert.pooler.squeeze'") }, lines.joined(separator: "\n"))
            }
            if mode == .progressive {
                XCTAssertEqual(t.plan.epochs.map(\.trainable.count), [1, 2, 3, 4])
            }
        }
    }

    /// An encoder LR far above BERT's is the seed's first anti-pattern: the plan warns.
    func testEncoderLRGuard() throws {
        let model = try TextTrainingModel.load(Self.path("bert_cls"))
        let g = try TextHead.attach(model, classes: ["a", "b", "c"], seed: 0)
        var c = TrainingConfig()
        c.mode = .finetune
        c.text = true
        c.groups = model.groupSpec
        c.lr = 1e-3
        c.backboneLR = 1e-3
        let bad = try TrainingPlan(graph: g, config: c, classes: ["a", "b", "c"])
        XCTAssertTrue(bad.encoderLRTooHigh)
        XCTAssertTrue(bad.warnings.contains { $0.contains("encoder learning rate 1.0e-03 is far above") }, "\(bad.warnings)")
        c.backboneLR = 2e-5
        c.lr = 2e-4
        let good = try TrainingPlan(graph: g, config: c, classes: ["a", "b", "c"])
        XCTAssertFalse(good.encoderLRTooHigh)
        XCTAssertTrue(good.warnings.isEmpty, "\(good.warnings)")
    }
}
