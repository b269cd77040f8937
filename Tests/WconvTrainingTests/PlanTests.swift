import OrderedCollections
import WconvGraph
import WconvRuntime
import WconvTensor
@testable import WconvTraining
import XCTest

/// A weights-only graph holding the names and shapes of a real model (values share one float).
func namesGraph(_ model: String, prefix: String = "") throws -> ModelGraph {
    let all = try XCTUnwrap(Fixture.json("model_names.json") as? [String: [String: [[Any]]]])
    let m = try XCTUnwrap(all[model], model)
    let one = Storage(array: [Float(0)])
    var params = OrderedDictionary<String, Tensor>()
    var buffers = Set<String>()
    for (key, isBuffer) in [("params", false), ("buffers", true)] {
        for entry in m[key] ?? [] {
            let name = prefix + (entry[0] as! String), shape = ints(entry[1])
            params[name] = try Tensor(dtype: .f32, shape: shape, strides: shape.map { _ in 0 }, storage: one)
            if isBuffer { buffers.insert(name) }
        }
    }
    return ModelGraph(parameters: params, buffers: buffers)
}

/// x → conv(a) → relu → gap → flatten → linear(z) → logits: names that say nothing.
func tinyGraph(classes: Int = 4, bn: Bool = true) -> ModelGraph {
    var rng = RNG(seed: 5)
    func rand(_ shape: [Int]) -> Tensor { Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float(rng.normal() * 0.3) }) }
    var p = OrderedDictionary<String, Tensor>()
    p["a.w"] = rand([4, 3, 3, 3]); p["a.b"] = rand([4])
    p["n.w"] = Tensor(shape: [4], floats: [1, 1, 1, 1]); p["n.b"] = Tensor(zeros: [4])
    p["n.rm"] = Tensor(zeros: [4]); p["n.rv"] = Tensor(shape: [4], floats: [1, 1, 1, 1])
    p["c.w"] = rand([6, 4, 3, 3])
    p["z.w"] = rand([classes, 6]); p["z.b"] = rand([classes])
    var nodes = [GraphNode(name: "conv_a", op: .conv2d, inputs: ["x", "a.w", "a.b"], outputs: ["v1"], attributes: ["strides": .ints([1, 1]), "pads": .ints([1, 1, 1, 1]), "dilations": .ints([1, 1]), "group": .int(1)])]
    if bn { nodes.append(GraphNode(name: "bn_n", op: .batchNorm, inputs: ["v1", "n.w", "n.b", "n.rm", "n.rv"], outputs: ["v2"], attributes: ["epsilon": .float(1e-5), "momentum": .float(0.1)])) }
    else { nodes.append(GraphNode(name: "id", op: .identity, inputs: ["v1"], outputs: ["v2"])) }
    nodes += [
        GraphNode(name: "relu1", op: .relu, inputs: ["v2"], outputs: ["v3"]),
        GraphNode(name: "conv_c", op: .conv2d, inputs: ["v3", "c.w", ""], outputs: ["v4"], attributes: ["strides": .ints([1, 1]), "pads": .ints([1, 1, 1, 1]), "dilations": .ints([1, 1]), "group": .int(1)]),
        GraphNode(name: "relu2", op: .relu, inputs: ["v4"], outputs: ["v5"]),
        GraphNode(name: "gap", op: .globalAvgPool, inputs: ["v5"], outputs: ["v6"], attributes: ["keepdims": .int(0)]),
        GraphNode(name: "flat", op: .flatten, inputs: ["v6"], outputs: ["feat"], attributes: ["axis": .int(1)]),
        GraphNode(name: "lin_z", op: .linear, inputs: ["feat", "z.w", "z.b"], outputs: ["logits"]),
    ]
    if !bn { for k in ["n.w", "n.b", "n.rm", "n.rv"] { p.removeValue(forKey: k) } }
    return ModelGraph(nodes: nodes, inputs: [ValueInfo(name: "x", shape: [nil, 3, 8, 8])], outputs: [ValueInfo(name: "logits", shape: [nil, classes])],
                      parameters: p, buffers: bn ? ["n.rm", "n.rv"] : [], preprocessing: Preprocessing(inputSize: [8, 8], resizeShorter: 9))
}

final class LayerGroupTests: XCTestCase {
    func groups(_ model: String, prefix: String = "") throws -> LayerGrouping { try LayerGrouping(graph: try namesGraph(model, prefix: prefix)) }

    func testTorchvisionFamilies() throws {
        let r = try groups("resnet18")
        XCTAssertEqual(r.groups.map(\.name), ["stem", "layer1", "layer2", "layer3", "layer4", "head"])
        XCTAssertEqual(r.groups[0].parameters, ["conv1.weight", "bn1.weight", "bn1.bias"])
        XCTAssertEqual(r.head.parameters, ["fc.weight", "fc.bias"])
        XCTAssertEqual(r.groups[1].buffers.count, 4 * 3)  // 4 BNs × (mean, var, num_batches_tracked)

        let e = try groups("efficientnet_b0")
        XCTAssertEqual(e.groups.map(\.name), (0...8).map { "features.\($0)" } + ["head"])
        XCTAssertEqual(e.groups[0].kind, .stem)
        XCTAssertEqual(e.head.parameters, ["classifier.1.weight", "classifier.1.bias"])

        let m = try groups("mobilenet_v3_small")
        XCTAssertEqual(m.head.parameters, ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"])

        let v = try groups("vgg11_bn")
        XCTAssertEqual(v.groups.count, 8 + 1, v.groups.map(\.name).joined(separator: " "))
        XCTAssertTrue(v.groups[0].parameters.contains("features.1.weight"))   // BN joins its conv

        let d = try groups("densenet121")
        XCTAssertEqual(d.groups.map(\.name), ["stem"] + (1...4).map { "features.denseblock\($0)" } + ["head"])
        XCTAssertTrue(d.groups[1].parameters.contains("features.transition1.conv.weight"))
        XCTAssertTrue(d.groups[4].parameters.contains("features.norm5.weight"))

        let t = try groups("vit_b_16")
        XCTAssertEqual(t.groups.count, 1 + 12 + 1)
        XCTAssertEqual(t.groups[0].parameters, ["class_token", "conv_proj.weight", "conv_proj.bias", "encoder.pos_embedding"])
        XCTAssertEqual(t.groups[1].name, "encoder.layers.encoder_layer_0")
        // The final LayerNorm trains with the head (timm's layer-decay grouping).
        XCTAssertEqual(t.head.parameters, ["encoder.ln.weight", "encoder.ln.bias", "heads.head.weight", "heads.head.bias"])

        let c = try groups("convnext_tiny")
        XCTAssertEqual(c.groups.first?.name, "features.0")
        XCTAssertEqual(c.head.parameters.last, "classifier.2.bias")
    }

    func testKerasNames() throws {
        let all = try XCTUnwrap(Fixture.json("model_names.json") as? [String: Any])
        try XCTSkipIf(all["keras_resnet50"] == nil, "keras names were not generated")
        let k = try groups("keras_resnet50")
        XCTAssertEqual(k.groups.map(\.name), ["stem", "conv2", "conv3", "conv4", "conv5", "head"])
        XCTAssertEqual(k.head.parameters, ["predictions/kernel", "predictions/bias"])
    }

    func testWrapperPrefixesAndSENames() throws {
        let r = try groups("resnet18", prefix: "module.")
        XCTAssertEqual(r.groups.map(\.name), ["stem", "module.layer1", "module.layer2", "module.layer3", "module.layer4", "head"])
        XCTAssertEqual(r.head.parameters, ["module.fc.weight", "module.fc.bias"])
    }

    func testStructuralHeadAndFallbackGroups() throws {
        let g = try LayerGrouping(graph: tinyGraph())
        XCTAssertEqual(g.method, "structural")
        XCTAssertEqual(g.headNode, "lin_z")
        XCTAssertEqual(g.head.parameters, ["z.w", "z.b"])
        XCTAssertEqual(g.groups.flatMap(\.parameters).count, 7)
        XCTAssertEqual(g.groups.flatMap(\.batchNormNodes), ["bn_n"])
    }

    func testUserGroups() throws {
        let g = try LayerGrouping(graph: tinyGraph(), userGroups: "early=a|n,late=c,head=z")
        XCTAssertEqual(g.groups.map(\.name), ["early", "late", "head"])
        XCTAssertEqual(g.groups[0].parameters, ["a.w", "a.b", "n.w", "n.b"])
        XCTAssertEqual(g.groups[0].buffers, ["n.rm", "n.rv"])
        XCTAssertThrowsError(try LayerGrouping(graph: tinyGraph(), userGroups: "early=a,head=z")) { e in
            XCTAssertTrue("\(e)".contains("c.w"), "\(e)")
        }
        XCTAssertThrowsError(try LayerGrouping(graph: tinyGraph(), userGroups: "early"))
    }
}

final class TrainingPlanTests: XCTestCase {
    func plan(_ model: String = "resnet18", _ edit: (inout TrainingConfig) -> Void) throws -> TrainingPlan {
        var c = TrainingConfig()
        edit(&c)
        return try TrainingPlan(graph: try namesGraph(model), config: c, classes: ["a", "b", "c"], modelName: model)
    }

    func testGeometricLayerLRIsTheSeedsFormula() throws {
        let p = try plan { $0.mode = .finetune; $0.layerLR = .geometric(base: 1e-6, max: 1e-3); $0.epochs = 2 }
        let n = p.grouping.groups.count
        for (i, g) in p.grouping.groups.enumerated() {
            let seed = 1e-6 * pow(1e-3 / 1e-6, Double(i) / Double(n - 1))
            XCTAssertEqual(p.groupLR[g.name]!, seed, accuracy: seed * 1e-12)
        }
        XCTAssertEqual(p.groupLR["head"]!, 1e-3, accuracy: 1e-15)
        XCTAssertEqual(p.groupLR["stem"]!, 1e-6, accuracy: 1e-18)
    }

    func testLayerDecayRunsFromTheHead() throws {
        let p = try plan { $0.mode = .finetune; $0.layerLR = .decay(0.75); $0.lr = 1e-3 }
        XCTAssertEqual(p.groupLR["head"]!, 1e-3, accuracy: 1e-15)
        XCTAssertEqual(p.groupLR["layer4"]!, 0.75e-3, accuracy: 1e-15)
        XCTAssertEqual(p.groupLR["stem"]!, 1e-3 * pow(0.75, 5), accuracy: 1e-15)
    }

    func testModesAndProgressiveUnfreezing() throws {
        let fe = try plan { $0.mode = .featureExtract; $0.epochs = 3 }
        XCTAssertEqual(fe.trainableParameters(epoch: 2), ["fc.weight", "fc.bias"])
        var cfg = TrainingConfig()
        cfg.mode = .featureExtract
        XCTAssertEqual(try TrainingPlan(graph: tinyGraph(), config: cfg, classes: ["a", "b"]).batchNormModes(epoch: 0), ["bn_n": .frozen])
        cfg.mode = .finetune
        XCTAssertEqual(try TrainingPlan(graph: tinyGraph(), config: cfg, classes: ["a", "b"]).batchNormModes(epoch: 0), ["bn_n": .train])
        cfg.bn = .frozenAffine
        XCTAssertEqual(try TrainingPlan(graph: tinyGraph(), config: cfg, classes: ["a", "b"]).batchNormModes(epoch: 0), ["bn_n": .frozenAffine])
        let pr = try plan { $0.mode = .progressive; $0.epochs = 7 }
        XCTAssertEqual(pr.epochs.map(\.trainable.count), [1, 2, 3, 4, 5, 6, 6])
        XCTAssertEqual(pr.epochs[1].trainable, ["layer4", "head"])
        XCTAssertEqual(pr.epochs[2].trainable, ["layer3", "layer4", "head"])
        let ft = try plan { $0.mode = .finetune; $0.lr = 1e-3 }
        XCTAssertEqual(ft.groupLR["layer2"]!, 1e-4, accuracy: 1e-15)
        // Norms and biases get no weight decay.
        let groups = ft.parameterGroups(epoch: 0)
        let nd = try XCTUnwrap(groups.first { $0.name == "stem.no_decay" })
        XCTAssertEqual(nd.parameters, ["bn1.weight", "bn1.bias"])
        XCTAssertEqual(nd.weightDecay, 0)
        XCTAssertEqual(groups.first { $0.name == "stem" }?.weightDecay, 0.01)
        XCTAssertTrue(ft.warnings.isEmpty, ft.warnings.joined())
        XCTAssertTrue(ft.render().contains("layer4"))
    }

    func testGuardRails() throws {
        let hot = try plan { $0.mode = .finetune; $0.lr = 1e-3; $0.backboneLR = 5e-4 }
        XCTAssertTrue(hot.warnings.contains { $0.contains("--backbone-lr 1.0e-04") }, hot.warnings.joined())
        let small = try plan { $0.mode = .finetune; $0.batchSize = 8; $0.bn = .train }
        XCTAssertTrue(small.warnings.contains { $0.contains("--bn frozen") })
        let auto = try plan { $0.mode = .finetune; $0.batchSize = 8 }
        XCTAssertFalse(auto.warnings.contains { $0.contains("--bn frozen") }, "auto on small batches is advice in the notes")
        XCTAssertTrue(auto.notes.contains { $0.contains("--bn frozen") }, auto.notes.joined())
        let frozen = try plan { $0.mode = .finetune; $0.batchSize = 8; $0.bn = .frozen }
        XCTAssertFalse(frozen.warnings.contains { $0.contains("--bn frozen") })
        var p = try plan { $0.head = "keep" }
        XCTAssertThrowsError(try p.checkData(headOutputs: 1000, dataClasses: 3, channelStats: nil)) { XCTAssertTrue("\($0)".contains("--head new")) }
        try p.checkData(headOutputs: 3, dataClasses: 3, channelStats: [(0.1, 1.1), (3.2, 0.1), (0, 1)])
        XCTAssertTrue(p.warnings.contains { $0.contains("normalis") })
        XCTAssertThrowsError(try plan { $0.schedule = "zigzag" })
    }

    func testHeadReplacementRunsInTheRuntime() throws {
        let g = tinyGraph(classes: 4)
        let r = try HeadReplacement.replace(g, classes: ["p", "q", "r"], dropout: 0.3, seed: 1)
        XCTAssertEqual(r.graph.parameters["z.w"]?.shape, [3, 6])
        XCTAssertEqual(r.graph.parameters["z.b"]?.shape, [3])
        XCTAssertEqual(r.featureValue, "feat")
        XCTAssertEqual(r.graph.labels, ["p", "q", "r"])
        XCTAssertTrue(r.graph.nodes.contains { $0.op == .dropout && $0.float("ratio") == 0.3 })
        let bound = 1 / Float(6).squareRoot()
        XCTAssertTrue(r.graph.parameters["z.w"]!.floats().allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(r.graph.parameters["z.w"]!.floats().map(abs).max()!, bound * 0.5)
        let again = try HeadReplacement.replace(g, classes: ["p", "q", "r"], dropout: 0.3, seed: 1)
        XCTAssertTrue(again.graph.parameters["z.w"]!.bitwiseEqual(r.graph.parameters["z.w"]!))
        let s = try InferenceSession(graph: r.graph, threads: 1)
        let out = try s.run(["x": Tensor(shape: [2, 3, 8, 8], floats: [Float](repeating: 0.5, count: 384))])
        XCTAssertEqual(out["logits"]?.shape, [2, 3])
        XCTAssertEqual(HeadReplacement.outputSize(r.graph), 3)
    }
}
