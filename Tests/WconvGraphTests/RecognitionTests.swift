import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import WconvTestSupport
import XCTest

/// Recognition of every fixture written by tools/fixtures/models/gen.py: the family, the
/// structure (op counts, strides, groups, head) and that shape inference gives PyTorch's output shape.
final class RecognitionTests: XCTestCase {
    func recognise(_ name: String, config: JSONValue? = nil) throws -> (Recognition, [String: Any]) {
        let m = try XCTUnwrap(try Fixtures.manifest()[name], "fixture \(name) missing from manifest.json")
        let files = try XCTUnwrap(m["files"] as? [String])
        let st = try XCTUnwrap(files.first { $0.hasSuffix(".safetensors") })
        let bundle = try Fixtures.readSafetensors(st)
        let sub = st.contains("/") ? String(st.split(separator: "/")[0]) : nil
        let r = try ArchitectureRecognizer.recognizeDetailed(bundle, configJSON: config ?? sub.flatMap(Fixtures.config))
        XCTAssertEqual(r.graph.parameters.count, m["num_tensors"] as? Int, "every tensor is kept")
        // Shape inference on the probe input gives PyTorch's output shape.
        let input = try XCTUnwrap(m["input_shape"] as? [Int])
        // Text encoders take ids, mask (and token types) of one shape.
        let shapes = try r.graph.inferShapes(inputShapes: Dictionary(uniqueKeysWithValues: r.graph.inputs.map { ($0.name, input) }))
        XCTAssertEqual(shapes[r.graph.outputs[0].name], m["output_shape"] as? [Int], "\(name) output shape")
        return (r, m)
    }

    func count(_ g: ModelGraph, _ op: Op) -> Int { g.nodes.filter { $0.op == op }.count }
    func node(_ g: ModelGraph, _ name: String) throws -> GraphNode { try XCTUnwrap(g.nodes.first { $0.name == name }, "no node \(name)") }

    func testResNetBasic() throws {
        let (r, m) = try recognise("resnet_basic")
        let g = r.graph
        XCTAssertEqual(r.family, "resnet")
        XCTAssertEqual(g.variant, "resnet12 (custom width 8)")
        let layers = try XCTUnwrap(m["layers"] as? [Int])
        let blocks = layers.reduce(0, +)
        // stem conv + 2 per block + downsample convs (layer2..4 change width or stride)
        XCTAssertEqual(count(g, .conv2d), 1 + 2 * blocks + 3)
        XCTAssertEqual(count(g, .add), blocks)
        XCTAssertEqual(try node(g, "layer2.0.conv1").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "layer2.1.conv1").ints("strides"), [1, 1])
        XCTAssertEqual(try node(g, "layer2.0.downsample.0").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "conv1").ints("pads"), [3, 3, 3, 3])
        XCTAssertEqual(try node(g, "maxpool").ints("kernel"), [3, 3])
        let head = try node(g, "fc")
        XCTAssertEqual(g.parameters[head.inputs[1]]?.shape, [m["num_classes"] as! Int, m["in_features"] as! Int])
        XCTAssertEqual(g.preprocessing, .imagenet)
        XCTAssertEqual(r.unused.count, count(g, .batchNorm), "only the BN step counters are unused")
        XCTAssertTrue(r.unused.values.allSatisfy { $0.contains("step counter") })
    }

    func testResNeXtBottleneckGroups() throws {
        let (r, m) = try recognise("resnext_bottleneck")
        let g = r.graph
        XCTAssertEqual(try node(g, "layer1.0.conv2").int("group"), m["groups"] as? Int)
        XCTAssertEqual(try node(g, "layer1.0.conv1").int("group"), 1)
        // torchvision v1.5: the stride sits on the 3×3 conv of a bottleneck.
        XCTAssertEqual(try node(g, "layer3.0.conv2").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "layer3.0.conv1").ints("strides"), [1, 1])
        XCTAssertEqual(count(g, .conv2d), 1 + 3 * 5 + 4)
        XCTAssertTrue(g.variant?.hasPrefix("resnext17_4x") ?? false, g.variant ?? "")
        XCTAssertTrue(r.evidence.contains { $0.contains("groups 4") })
    }

    func testEfficientNet() throws {
        let (r, m) = try recognise("efficientnet")
        let g = r.graph
        XCTAssertEqual(r.family, "efficientnet")
        let stages = try XCTUnwrap(m["stages"] as? [Int])
        let blocks = stages.reduce(0, +)
        XCTAssertEqual(count(g, .globalAvgPool), blocks, "one squeeze-excitation per MBConv")
        XCTAssertEqual(count(g, .sigmoid), blocks)
        // Depthwise convs: groups == channels, stride from the stage table.
        let dw2 = try node(g, "features.2.0.block.1.0")
        XCTAssertEqual(dw2.ints("strides"), [2, 2])
        XCTAssertEqual(dw2.int("group"), g.parameters["features.2.0.block.1.0.weight"]?.shape[0])
        XCTAssertEqual(try node(g, "features.5.0.block.1.0").ints("strides"), [1, 1])
        XCTAssertEqual(try node(g, "features.3.0.block.1.0").ints("pads"), [2, 2, 2, 2], "5×5 depthwise padding")
        // Stage 1 (expand ratio 1) has no expansion conv: block.0 is the depthwise one.
        XCTAssertEqual(try node(g, "features.1.0.block.0.0").int("group"), 8)
        // Residual adds exactly where PyTorch's blocks have use_res_connect.
        XCTAssertEqual(count(g, .add), m["residual_blocks"] as? Int)
        XCTAssertNil(g.nodes.first { $0.name == "features.1.0.block.2.0" }.flatMap { n in g.nodes.first { $0.inputs.contains(n.outputs[0]) && $0.op == .silu } },
                     "projection has no activation")
        XCTAssertEqual(try node(g, "features.0.0").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "classifier.1").inputs[1], "classifier.1.weight")
    }

    func testEfficientNetV2FusedStages() throws {
        let (r, m) = try recognise("efficientnet_v2")
        let g = r.graph
        XCTAssertTrue(g.variant?.hasPrefix("efficientnet_v2") ?? false, g.variant ?? "")
        let stages = try XCTUnwrap(m["stages"] as? [Int])
        let fused = try XCTUnwrap(m["fused_stages"] as? Int)
        // Squeeze-excitation only in the MBConv stages.
        XCTAssertEqual(count(g, .globalAvgPool), stages.dropFirst(fused).reduce(0, +))
        XCTAssertEqual(count(g, .add), m["residual_blocks"] as? Int)
        // V2-S strides [1,2,2,2,1,2]: the fused 3×3 of stage 2 strides, stage 5's depthwise does not.
        XCTAssertEqual(try node(g, "features.2.0.block.0.0").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "features.2.0.block.0.0").int("group"), 1)
        XCTAssertEqual(try node(g, "features.5.0.block.1.0").ints("strides"), [1, 1])
        XCTAssertEqual(try node(g, "features.6.0.block.1.0").ints("strides"), [2, 2])
        XCTAssertEqual(try node(g, "features.0.1").float("epsilon"), 1e-3)
    }

    func testMobileNetV2() throws {
        let (r, m) = try recognise("mobilenet_v2")
        let g = r.graph
        XCTAssertEqual(r.family, "mobilenet_v2")
        for n in [2, 4, 7, 14] { XCTAssertEqual(try node(g, "features.\(n).conv.1.0").ints("strides"), [2, 2], "block \(n)") }
        XCTAssertEqual(try node(g, "features.1.conv.0.0").ints("strides"), [1, 1])
        XCTAssertEqual(count(g, .relu6), 1 + 1 + 16 * 2 + 1)
        XCTAssertEqual(count(g, .add), m["residual_blocks"] as? Int)
    }

    func testMobileNetV3LargeAndSmall() throws {
        for (name, reluBlocks, seBlocks) in [("mobilenet_v3_large", 6, 8), ("mobilenet_v3_small", 3, 9)] {
            let (r, m) = try recognise(name)
            let g = r.graph
            XCTAssertEqual(g.variant, "mobilenet_v3_" + (m["variant"] as! String))
            // ReLU nodes inside blocks: large blocks 1–6, small 1–3 (+ the SE's inner ReLU).
            let blockRelus = Set(g.nodes.filter { $0.op == .relu && !$0.name.contains("fc") && !$0.name.hasSuffix(".activation") }
                .map { $0.name.split(separator: ".")[1] })
            XCTAssertEqual(blockRelus.count, reluBlocks, name)
            XCTAssertEqual(count(g, .hardSigmoid), seBlocks, name)
            let hs = try XCTUnwrap(g.nodes.first { $0.op == .hardSigmoid })
            XCTAssertEqual(hs.float("alpha") ?? 0, 1.0 / 6.0, accuracy: 1e-12)
            XCTAssertEqual(try node(g, "features.1.block.0.1").float("epsilon"), 1e-3)
            XCTAssertEqual(try node(g, "classifier.1").op, .hardSwish)
            XCTAssertEqual(count(g, .add), m["residual_blocks"] as? Int, name)
        }
    }

    func testVGG() throws {
        for name in ["vgg", "vgg_bn"] {
            let (r, m) = try recognise(name)
            let g = r.graph
            XCTAssertEqual(count(g, .conv2d), m["convs"] as? Int)
            XCTAssertEqual(count(g, .maxPool2d), m["pools"] as? Int)
            XCTAssertEqual(count(g, .batchNorm), (m["batch_norm"] as! Bool) ? 4 : 0)
            XCTAssertEqual(try node(g, "avgpool").ints("outputSize"), [7, 7])
            XCTAssertEqual(count(g, .linear), 3)
            XCTAssertEqual(count(g, .dropout), 2)
            XCTAssertEqual(g.variant, name == "vgg" ? "vgg7" : "vgg7_bn")
        }
    }

    func testDenseNet() throws {
        let (r, m) = try recognise("densenet")
        let g = r.graph
        let cfg = try XCTUnwrap(m["block_config"] as? [Int])
        XCTAssertEqual(count(g, .conv2d), 1 + 2 * cfg.reduce(0, +) + (cfg.count - 1))
        XCTAssertEqual(count(g, .avgPool2d), cfg.count - 1)
        XCTAssertTrue(r.evidence.contains { $0.contains("growth rate \(m["growth_rate"]!)") })
        XCTAssertEqual(ImportReportProbe.headIn(g), m["in_features"] as? Int)
    }

    func testDenseNetLegacyNamesAreRenamed() throws {
        var bundle = try Fixtures.readSafetensors("densenet.safetensors")
        var legacy = TensorBundle(format: bundle.format)
        for (k, v) in bundle.tensors {
            legacy.tensors[k.replacingOccurrences(of: ".norm1.", with: ".norm.1.").replacingOccurrences(of: ".conv2.", with: ".conv.2.")] = v
        }
        bundle = legacy
        let r = try ArchitectureRecognizer.recognizeDetailed(bundle)
        XCTAssertEqual(r.family, "densenet")
        XCTAssertTrue(r.renames.contains { $0.from == "features.denseblock1.denselayer1.norm.1.weight" && $0.to == "features.denseblock1.denselayer1.norm1.weight" })
        XCTAssertNotNil(r.graph.parameters["features.denseblock2.denselayer3.conv2.weight"])
    }

    func testBERTWithConfig() throws {
        let (r, m) = try recognise("bert_cls")
        let g = r.graph
        XCTAssertEqual(r.family, "bert")
        let att = g.nodes.filter { $0.op == .attention }
        XCTAssertEqual(att.count, m["layers"] as? Int)
        XCTAssertEqual(att.first?.int("heads"), m["heads"] as? Int)
        XCTAssertEqual(g.outputs.map(\.name), ["logits"])
        XCTAssertEqual(g.inputs.map(\.name), ["input_ids", "attention_mask", "token_type_ids"])
        XCTAssertTrue(g.inputs.allSatisfy { $0.dtype == .i64 && $0.shape == [nil, nil] })
        // Every attention node takes the additive [B, 1, 1, T] mask built from attention_mask.
        XCTAssertTrue(att.allSatisfy { $0.inputs.count == 4 && $0.inputs[3] == "bert.extended_attention_mask" })
        XCTAssertEqual(try node(g, "bert.embeddings.token_type_embeddings").inputs[0], "token_type_ids")
        XCTAssertEqual(try g.inferShapes(inputShapes: ["input_ids": [2, 5], "attention_mask": [2, 5], "token_type_ids": [2, 5]])["bert.extended_attention_mask"], [2, 1, 1, 5])
        XCTAssertNil(g.preprocessing)
        XCTAssertTrue(r.evidence.contains { $0.contains("config.json") })
        XCTAssertEqual(try node(g, "bert.embeddings.LayerNorm").float("epsilon"), 1e-12)
        XCTAssertEqual(count(g, .gelu), 2)
    }

    func testBERTWithoutConfigInfersHeads() throws {
        let (r, m) = try recognise("minilm_noconfig")
        XCTAssertEqual(r.graph.nodes.first { $0.op == .attention }?.int("heads"), m["heads"] as? Int)
        XCTAssertTrue(r.evidence.contains { $0.contains("inferred as hidden 64 / 64") })
        XCTAssertEqual(r.graph.outputs.map(\.name), ["last_hidden_state", "pooler_output"])
        let shapes = try r.graph.inferShapes(inputShapes: ["input_ids": [2, 7], "attention_mask": [2, 7], "token_type_ids": [2, 7]])
        XCTAssertEqual(shapes["pooler_output"], [2, 64])
    }

    func testBERTConfigDrivesHeadsEpsAndActivation() throws {
        let b = try Fixtures.readSafetensors("minilm_noconfig/model.safetensors")
        let g = try ArchitectureRecognizer.recognize(b, configJSON: ["num_attention_heads": 2, "hidden_act": "gelu_new", "layer_norm_eps": 1e-6])
        XCTAssertEqual(g.nodes.first { $0.op == .attention }?.int("heads"), 2)
        XCTAssertEqual(g.nodes.first { $0.op == .gelu }?.string("approximate"), "tanh")
        XCTAssertEqual(g.nodes.first { $0.op == .layerNorm }?.float("epsilon"), 1e-6)
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b, configJSON: ["num_attention_heads": 5])) { e in
            XCTAssertTrue("\(e)".contains("5 heads do not divide hidden size 64"), "\(e)")
        }
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b, configJSON: ["hidden_act": "mish"])) { e in
            XCTAssertTrue("\(e)".contains("'mish'"), "\(e)")
        }
    }

    func testDistilBERT() throws {
        let (r, m) = try recognise("distilbert")
        XCTAssertEqual(r.family, "distilbert")
        XCTAssertEqual(r.graph.nodes.first { $0.op == .attention }?.int("heads"), m["heads"] as? Int)
        XCTAssertFalse(r.graph.nodes.contains { $0.name.contains("token_type") })
        XCTAssertEqual(r.graph.inputs.map(\.name), ["input_ids", "attention_mask"], "no token-type embeddings, no token_type_ids input")
    }

    func testRoBERTaShapedEncoderIsNotClaimedAsBERT() throws {
        var b = try Fixtures.readSafetensors("minilm_noconfig/model.safetensors")
        b.tensors["embeddings.token_type_embeddings.weight"] = Tensor(zeros: [1, 64])
        b.tensors["embeddings.position_embeddings.weight"] = Tensor(zeros: [514, 64])
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b)) { e in
            XCTAssertTrue("\(e)".contains("RoBERTa"), "\(e)")
        }
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(try Fixtures.readSafetensors("minilm_noconfig/model.safetensors"),
                                                                  configJSON: ["model_type": "roberta"])) { e in
            XCTAssertTrue("\(e)".contains("model_type 'roberta'"), "\(e)")
        }
    }

    func testDistilBERTSequenceClassification() throws {
        let (r, m) = try recognise("distilbert_cls")
        let g = r.graph
        XCTAssertEqual(g.outputs.map(\.name), ["logits"])
        XCTAssertEqual(g.nodes.first { $0.op == .attention }?.int("heads"), m["heads"] as? Int)
        XCTAssertEqual(try node(g, "pre_classifier.relu").op, .relu)
        XCTAssertNotNil(g.parameters["distilbert.embeddings.word_embeddings.weight"], "task prefix kept in names")
    }

    func testWrapperPrefixIsStrippedAndReported() throws {
        let plain = try Fixtures.readSafetensors("resnet_basic.safetensors")
        var wrapped = TensorBundle(format: plain.format)
        for (k, v) in plain.tensors { wrapped.tensors["module." + k] = v }
        let r = try ArchitectureRecognizer.recognizeDetailed(wrapped)
        XCTAssertEqual(r.family, "resnet")
        XCTAssertEqual(r.renames.count, plain.tensors.count)
        XCTAssertTrue(r.renames[0].rule.contains("module."))
        XCTAssertNotNil(r.graph.parameters["fc.weight"])
    }

    func testForcedArchitectureThatDoesNotFit() throws {
        let b = try Fixtures.readSafetensors("vgg.safetensors")
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b, forced: "resnet50")) { e in
            let msg = (e as? WconvError)?.message ?? ""
            XCTAssertTrue(msg.contains("resnet:"), msg)
            XCTAssertFalse(msg.contains("vgg:"), msg)
        }
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b, forced: "lenet")) { e in
            XCTAssertEqual((e as? WconvError)?.kind, .usage)
        }
    }

    /// A custom CNN sharing VGG's `features.N` names but with its own `fc` head must not be claimed
    /// as a (headless) VGG: unexplained tensors reject a family unless --arch forces it.
    func testCustomModelWithSharedNamesIsNotClaimed() throws {
        var b = TensorBundle(format: "safetensors")
        b.tensors["features.0.weight"] = Tensor(zeros: [16, 3, 3, 3])
        b.tensors["features.3.weight"] = Tensor(zeros: [32, 16, 3, 3])
        for (i, c) in [(1, 16), (4, 32)] {
            for k in ["weight", "bias", "running_mean", "running_var"] { b.tensors["features.\(i).\(k)"] = Tensor(zeros: [c]) }
        }
        b.tensors["fc.weight"] = Tensor(zeros: [5, 32])
        b.tensors["fc.bias"] = Tensor(zeros: [5])
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b)) { e in
            XCTAssertTrue("\(e)".contains("vgg: the vgg layout matched but 2 tensor(s) would be left unexplained: 'fc.bias' [5], 'fc.weight' [5, 32]")
                          || "\(e)".contains("'fc.weight' [5, 32]"), "\(e)")
        }
        let forced = try ArchitectureRecognizer.recognizeDetailed(b, forced: "vgg")
        XCTAssertTrue(forced.unused["fc.weight"]?.contains("--arch") ?? false)
    }

    func testNonMatchingFileListsEveryFamily() throws {
        var b = TensorBundle(format: "safetensors")
        b.tensors["encoder.conv.weight"] = Tensor(zeros: [4, 3, 3, 3])
        b.tensors["decoder.out.weight"] = Tensor(zeros: [10, 4])
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b)) { e in
            let err = e as? WconvError
            XCTAssertEqual(err?.kind, .invalidInput)
            for f in ArchitectureRecognizer.familyNames { XCTAssertTrue(err?.message.contains("  \(f): ") ?? false, "\(f) missing: \(err?.message ?? "")") }
        }
    }

    func testHeadlessBackbonesOutputPooledFeatures() throws {
        for (file, head, width) in [("resnet_basic.safetensors", "fc", 24), ("densenet.safetensors", "classifier", 20),
                                    ("efficientnet.safetensors", "classifier.1", 48), ("vgg.safetensors", "classifier", 24 * 49)] {
            var b = try Fixtures.readSafetensors(file)
            for k in b.tensors.keys where k.hasPrefix(head + ".") { b.tensors[k] = nil }
            let r = try ArchitectureRecognizer.recognizeDetailed(b)
            XCTAssertEqual(r.graph.outputs.map(\.name), ["features"], file)
            XCTAssertEqual(try r.graph.inferShapes(inputShapes: ["input": [2, 3, 48, 48]])["features"], [2, width], file)
            XCTAssertTrue(r.evidence.contains { $0.contains("headless") }, file)
        }
    }

    func testWrongHeadShapeFailsNamingTheTensor() throws {
        var b = try Fixtures.readSafetensors("resnet_basic.safetensors")
        b.tensors["fc.weight"] = Tensor(zeros: [10, 25])
        XCTAssertThrowsError(try ArchitectureRecognizer.recognize(b, forced: "resnet")) { e in
            let msg = (e as? WconvError)?.message ?? ""
            XCTAssertTrue(msg.contains("fc") && msg.contains("25") && msg.contains("24"), msg)
        }
    }
}

enum ImportReportProbe {
    static func headIn(_ g: ModelGraph) -> Int? {
        g.nodes.last { $0.op == .linear }.flatMap { g.parameters[$0.inputs[1]]?.shape[1] }
    }
}

/// Hostile shapes in otherwise well-formed state dicts: recognition fails with a reason or
/// succeeds, but never traps.
final class RecognitionRobustnessTests: XCTestCase {
    func testMutatedShapesNeverCrash() throws {
        let one = Storage(zeroedByteCount: 8)
        let shapes: [[Int]] = [[], [0], [3], [1, 1], [0, 3, 3, 3], [5, 0, 1, 1], [1 << 40, 1], [7, 3, 3, 3], [2, 2, 2, 2, 2], [8, 1, 1 << 20, 1 << 20]]
        var rng = SeededGenerator(seed: 20261129)  // deterministic, so a failure reproduces
        var outcomes = [0, 0]
        for file in ["resnet_basic.safetensors", "efficientnet.safetensors", "mobilenet_v3_small.safetensors",
                     "densenet.safetensors", "vgg_bn.safetensors", "bert_cls/model.safetensors"] {
            let base = try Fixtures.readSafetensors(file)
            let keys = Array(base.tensors.keys)
            for _ in 0..<60 {
                var b = base
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let k = keys.randomElement(using: &rng)!
                    let s = shapes.randomElement(using: &rng)!
                    b.tensors[k] = try Tensor(dtype: .f32, shape: s, strides: s.map { _ in 0 }, storage: one)
                }
                do {
                    _ = try ArchitectureRecognizer.recognize(b, configJSON: ["num_attention_heads": 4])
                    outcomes[0] += 1
                } catch let e as WconvError {
                    XCTAssertFalse(e.message.isEmpty)
                    outcomes[1] += 1
                }
            }
        }
        XCTAssertGreaterThan(outcomes[1], 0)
    }
}
