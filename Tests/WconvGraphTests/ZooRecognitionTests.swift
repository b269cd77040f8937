import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest

/// The zoo layouts (efficientnet_pytorch B0–B7 and Lite0–4, timm, torchvision ConvNeXt/ViT, HF ViT)
/// at full size, from fixtures/models/zoo/full_size.zip (names and shapes written by gen_zoo.py on
/// the meta device), and their layer groups on the tiny fixtures.
final class ZooRecognitionTests: XCTestCase {
    static let zooDir = Fixtures.dir + "/zoo"

    /// name → JSON entry of every full-size model in the zip.
    func fullSize() throws -> [String: [String: Any]] {
        let zip = try ZipArchive(file: try MappedFile(path: Self.zooDir + "/full_size.zip"))
        var out: [String: [String: Any]] = [:]
        for e in zip.entries {
            let storage = try zip.data(of: e)
            let data = withExtendedLifetime(storage) { Data(storage.buffer) }
            out[String(e.name.dropLast(5))] = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
        return out
    }

    func testFullSizeLayouts() throws {
        let all = try fullSize()
        XCTAssertGreaterThanOrEqual(all.count, 25)
        for (name, entry) in all.sorted(by: { $0.key < $1.key }) {
            let r = try ArchitectureRecognizer.recognizeDetailed(try Fixtures.shapesOnly(entry), configJSON: try Fixtures.config(entry["config"]))
            if let v = entry["variant"] as? String { XCTAssertEqual(r.graph.variant, v, name) }
            let size = r.graph.inputs[0].shape[2] ?? r.graph.preprocessing?.inputSize.first ?? 224
            let shapes = try r.graph.inferShapes(inputShapes: ["input": [1, 3, size, size]])
            XCTAssertEqual(shapes[r.graph.outputs[0].name], entry["output_shape"] as? [Int], name)
            if let heads = entry["heads"] as? Int {
                XCTAssertEqual(r.graph.nodes.first { $0.op == .attention }?.int("heads"), heads, name)
            }
            XCTAssertTrue(r.unused.keys.allSatisfy { $0.hasSuffix("num_batches_tracked") }, "\(name): \(r.unused.keys.sorted().prefix(3))")
        }
    }

    /// efficientnet_pytorch's static 'same' padding: every padded conv of every B/Lite variant gets
    /// exactly the package's ZeroPad2d (left, right, top, bottom), asymmetric ones included.
    func testEfficientNetPyTorchStaticPadding() throws {
        var checked = 0, asymmetric = 0
        for (name, entry) in try fullSize() where name.hasPrefix("effnet_pt_") {
            let g = try ArchitectureRecognizer.recognize(try Fixtures.shapesOnly(entry))
            XCTAssertEqual(g.preprocessing?.inputSize.first, ["b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528,
                                                              "b7": 600, "b8": 672, "l2": 800, "lite0": 224, "lite1": 240, "lite2": 260, "lite3": 280,
                                                              "lite4": 300][String(name.dropFirst(10))], name)
            let expected = try XCTUnwrap(entry["static_pads"] as? [String: [Int]])
            for node in g.nodes where node.op == .conv2d {
                let p = try XCTUnwrap(node.ints("pads"))  // top, left, bottom, right
                let want = expected[node.name].map { [$0[2], $0[0], $0[3], $0[1]] } ?? [0, 0, 0, 0]
                XCTAssertEqual(p, want, "\(name) \(node.name)")
                checked += 1
                if p[0] != p[2] { asymmetric += 1 }
            }
            XCTAssertEqual(g.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-3)
            let lite = name.contains("lite")
            XCTAssertEqual(g.nodes.contains { $0.op == .relu6 }, lite, name)
            XCTAssertEqual(g.nodes.contains { $0.op == .silu }, !lite, name)
        }
        XCTAssertGreaterThan(checked, 1000)
        XCTAssertGreaterThan(asymmetric, 40)
    }

    func groups(_ name: String) throws -> LayerGrouping {
        let sub = Self.zooDir + "/" + name
        let b = try Fixtures.readSafetensors("zoo/\(name)/model.safetensors")
        return try LayerGrouping(graph: try ArchitectureRecognizer.recognize(b, configJSON: ArchitectureRecognizer.configBeside(path: sub + "/model.safetensors")))
    }

    /// ViT: patch embedding, class token and position embedding → stem; one group per block; the
    /// final LayerNorm and the head → head (timm-style layer decay).
    func testViTLayerGroups() throws {
        for (name, stem, blocks, head) in [
            ("timm_vit", ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed"], ["blocks.0", "blocks.1"],
             ["norm.weight", "norm.bias", "head.weight", "head.bias"]),
            ("tv_vit", ["conv_proj.weight", "conv_proj.bias", "class_token", "encoder.pos_embedding"], ["encoder.layers.encoder_layer_0"],
             ["encoder.ln.weight", "encoder.ln.bias", "heads.head.weight", "heads.head.bias"]),
            ("hf_vit_cls", ["vit.embeddings.patch_embeddings.projection.weight", "vit.embeddings.patch_embeddings.projection.bias",
                            "vit.embeddings.cls_token", "vit.embeddings.position_embeddings"], ["vit.encoder.layer.0", "vit.encoder.layer.1"],
             ["vit.layernorm.weight", "vit.layernorm.bias", "classifier.weight", "classifier.bias"]),
            // ViTModel (no `vit.` prefix) in transformers 5's in-memory names; its pooler is the head.
            ("hf_vit_model", ["embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
                              "embeddings.cls_token", "embeddings.position_embeddings"], ["layers.0"],
             ["layernorm.weight", "layernorm.bias", "pooler.dense.weight", "pooler.dense.bias"]),
        ] {
            let g = try groups(name)
            XCTAssertEqual(g.groups.first?.kind, .stem, name)
            XCTAssertEqual(g.groups.first?.parameters, stem, name)
            XCTAssertEqual(g.groups.filter { $0.kind == .stage }.map(\.name), blocks, name)
            XCTAssertEqual(g.head.parameters, head, name)
        }
    }

    func testCNNLayerGroups() throws {
        for (name, stages, head) in [
            ("effnet_pt_b", (0..<9).map { "_blocks.\($0)" }, ["_fc.weight", "_fc.bias"]),
            ("effnet_pt_lite", (0..<9).map { "_blocks.\($0)" }, ["_fc.weight", "_fc.bias"]),
            ("timm_efficientnet_b0", (0..<7).map { "blocks.\($0)" }, ["classifier.weight", "classifier.bias"]),
            ("timm_convnext", (0..<4).map { "stages.\($0)" }, ["head.norm.weight", "head.norm.bias", "head.fc.weight", "head.fc.bias"]),
            ("tv_convnext", (1...7).map { "features.\($0)" }, ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"]),
            ("timm_resnet_d", (1...4).map { "layer\($0)" }, ["fc.weight", "fc.bias"]),
        ] {
            let g = try groups(name)
            XCTAssertEqual(g.groups.first?.kind, .stem, name)
            XCTAssertEqual(g.groups.filter { $0.kind == .stage }.map(\.name), stages, name)
            XCTAssertEqual(g.head.parameters, head, name)
            let all = g.groups.flatMap { $0.parameters + $0.buffers }
            XCTAssertEqual(all.count, Set(all).count, "\(name): each tensor in one group")
        }
    }

    /// What decides between layouts that share names: config.json's architecture (timm tf_ models),
    /// and the refusal of look-alikes the families do not build.
    func testConfigDecidesAndLookAlikesAreRefused() throws {
        let b = try Fixtures.readSafetensors("zoo/timm_tf_efficientnet_b0/model.safetensors")
        let tf = try ArchitectureRecognizer.recognize(b, configJSON: Fixtures.config("zoo/timm_tf_efficientnet_b0"))
        XCTAssertEqual(tf.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-3)
        XCTAssertTrue(tf.nodes.contains { $0.op == .conv2d && ($0.ints("pads") ?? []).count == 4 && $0.ints("pads")![0] != $0.ints("pads")![2] })
        let plain = try ArchitectureRecognizer.recognizeDetailed(b)
        XCTAssertEqual(plain.graph.nodes.first { $0.op == .batchNorm }?.float("epsilon"), 1e-5)
        XCTAssertTrue(plain.evidence.contains { $0.contains("tf_efficientnet weights need their config.json") })

        // A timm ViT with register tokens is not silently built as a plain ViT.
        var reg = try Fixtures.readSafetensors("zoo/timm_vit/model.safetensors")
        reg.tensors["reg_token"] = Tensor(zeros: [1, 4, 16])
        let (match, tried) = try ArchitectureRecognizer.attempt(reg, configJSON: Fixtures.config("zoo/timm_vit"))
        XCTAssertNil(match)
        XCTAssertTrue(tried.contains { $0.family == "vit" && $0.reason.contains("reg_token") })

        // Without config.json a 16-wide ViT cannot have its heads inferred: the reason says what to supply.
        let (none, why) = try ArchitectureRecognizer.attempt(try Fixtures.readSafetensors("zoo/timm_vit/model.safetensors"))
        XCTAssertNil(none)
        XCTAssertTrue(why.contains { $0.family == "vit" && $0.reason.contains("config.json") })
    }
}
