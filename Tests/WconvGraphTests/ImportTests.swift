import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
import WconvTestSupport

/// The import dispatch and report: every tensor accounted for, weights-only fallback with the
/// reason, canonical bundles restored, layer groups, provenance hashing.
final class ImportTests: XCTestCase {
    /// The source file's SHA-256 is recorded when a model may be written from the graph (import,
    /// load), and skipped when it is only run (loadRunnable): hashing reads the whole file.
    func testSourceHashOnlyWhereAModelIsWritten() throws {
        let path = Repo.fixture("models/resnet_basic.safetensors")
        let want = try SHA256.hex(ofFile: path)
        XCTAssertEqual(try GraphImporter.importGraph(path: path).graph.provenance.sourceSHA256, want)
        XCTAssertEqual(try GraphImporter.importGraph(path: path).report.sourceSHA256, want)
        XCTAssertEqual(try ModelIO.load(path: path).provenance.sourceSHA256, want)
        XCTAssertNil(try ModelIO.load(path: path, hashSource: false).provenance.sourceSHA256)
        let runnable = try ModelIO.loadRunnable(path: path)
        XCTAssertNil(runnable.provenance.sourceSHA256)
        XCTAssertEqual(runnable.provenance.sourceFile, path)
    }

    func testReportAccountsForEveryTensor() throws {
        var src = try Fixtures.readSafetensors("resnet_basic.safetensors")
        var wrapped = TensorBundle(format: "pytorch-zip")
        for (k, v) in src.tensors { wrapped.tensors["module." + k] = v }
        src = wrapped
        let r = try GraphImporter.importGraph(bundle: src, sourcePath: "dir/resnet.pth", sha256: "00ff", toolVersion: "9.9")
        let rep = r.report
        XCTAssertEqual(rep.tensors.count, src.tensors.count)
        XCTAssertEqual(rep.architecture, "resnet")
        XCTAssertTrue(rep.tensors.allSatisfy { $0.source.hasPrefix("module.") && !$0.name.hasPrefix("module.") })
        let counters = rep.tensors.filter { $0.source.hasSuffix("num_batches_tracked") }
        XCTAssertFalse(counters.isEmpty)
        XCTAssertTrue(counters.allSatisfy { $0.status == "unused" && ($0.reason ?? "").contains("step counter") && $0.buffer })
        let fc = try XCTUnwrap(rep.tensors.first { $0.name == "fc.weight" })
        XCTAssertEqual(fc.status, "renamed")
        XCTAssertEqual(fc.usedBy, ["fc"])
        XCTAssertTrue(fc.rule?.contains("module.") ?? false)
        XCTAssertEqual(rep.head?.inFeatures, 24)
        XCTAssertEqual(rep.head?.outFeatures, 10)
        var family = rep.preprocessing
        family?.assumed = nil
        XCTAssertEqual(family, .imagenet)
        XCTAssertEqual(rep.preprocessing?.assumed, true, "a state dict records no preprocessing: the family's is assumed")
        XCTAssertEqual(r.graph.provenance.sourceSHA256, "00ff")
        XCTAssertEqual(r.graph.provenance.sourceFormat, "pytorch-zip")
        XCTAssertEqual(r.graph.provenance.toolVersion, "9.9")
        let text = rep.render()
        XCTAssertTrue(text.contains("architecture:  resnet"), text)
        XCTAssertTrue(text.contains("head:          fc (fc.weight): 24 → 10"), text)
        XCTAssertNoThrow(try JSONEncoder().encode(rep))
    }

    func testUnrecognisedBundleImportsAsWeightsOnlyWithReasons() throws {
        var b = TensorBundle(format: "safetensors")
        b.tensors["w1"] = Tensor(zeros: [3, 3])
        let r = try GraphImporter.importGraph(bundle: b, sourcePath: "x.safetensors")
        XCTAssertTrue(r.graph.isWeightsOnly)
        XCTAssertEqual(r.report.familiesTried.map(\.family), ArchitectureRecognizer.familyNames)
        XCTAssertTrue(r.report.familiesTried.allSatisfy { !$0.reason.isEmpty })
        XCTAssertTrue(r.report.weightsOnlyReason?.contains("no known architecture") ?? false)
        XCTAssertEqual(r.report.tensors.first?.status, "unused")
        // Forcing a family that does not fit is an error, not a silent weights-only import.
        XCTAssertThrowsError(try GraphImporter.importGraph(bundle: b, sourcePath: "x", arch: "vgg"))
        // The weights-only graph still round-trips through the canonical file.
        let back = try CanonicalModel.graph(from: CanonicalModel.bundle(from: r.graph))
        XCTAssertTrue(back.isWeightsOnly)
        XCTAssertEqual(back.provenance.notes["weightsOnlyReason"], r.report.weightsOnlyReason)
    }

    /// What `run`, `verify` and `bench run` load: a graph, or a refusal that says why there is none.
    func testLoadRunnableRefusesWeightsWithoutAGraph() throws {
        let temp = TempDir()
        var b = TensorBundle(format: "safetensors")
        b.tensors["encoder.mystery"] = Tensor(shape: [2, 2], floats: [1, 2, 3, 4])
        let path = temp.file("bare.safetensors")
        try SafetensorsWriter.write(b, to: path)
        XCTAssertThrowsError(try ModelIO.loadRunnable(path: path)) { e in
            XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
            XCTAssertTrue("\(e)".contains("has weights but no graph, so it cannot run: ") && "\(e)".contains("bare.safetensors"), "\(e)")
            XCTAssertTrue("\(e)".contains("wconv import --arch NAME"), "\(e)")
        }
        let g = try ModelIO.loadRunnable(path: Repo.fixture("onnx/resnet_ts_op17.onnx"), toolVersion: "test")
        XCTAssertFalse(g.isWeightsOnly)
        XCTAssertEqual(g.provenance.toolVersion, "test")
    }

    func testONNXFileImportsThroughItsGraphBuilder() throws {
        let path = Repo.fixture("onnx/resnet_ts_op17.onnx")
        let r = try GraphImporter.importGraph(path: path)
        XCTAssertFalse(r.graph.isWeightsOnly)
        XCTAssertTrue(r.graph.nodes.contains { $0.op == .conv2d })
        XCTAssertTrue(r.report.evidence.first?.contains("onnx") ?? false)
    }

    func testCanonicalBundleIsRestoredNotRecognised() throws {
        let g = try ArchitectureRecognizer.recognize(try Fixtures.readSafetensors("vgg_bn.safetensors"))
        let canonical = CanonicalModel.bundle(from: g)
        let r = try GraphImporter.importGraph(bundle: canonical, sourcePath: "vgg.wconv.safetensors")
        XCTAssertEqual(r.graph.nodes, g.nodes)
        XCTAssertTrue(r.report.format.hasPrefix("wconv canonical"))
        XCTAssertTrue(r.report.evidence.first?.contains("wconv.graph") ?? false)
    }

    func testPreprocessingFromFileMetadataWins() throws {
        var b = try Fixtures.readSafetensors("vgg.safetensors")
        b.metadata["wconv.preprocess"] = #"{"inputSize":[96,96],"resizeShorter":null,"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5],"interpolation":"nearest","channelOrder":"bgr","scale":255}"#
        b.metadata["wconv.labels"] = #"["cat","dog"]"#
        let r = try GraphImporter.importGraph(bundle: b, sourcePath: "vgg.safetensors")
        XCTAssertEqual(r.graph.preprocessing?.inputSize, [96, 96])
        XCTAssertNil(r.graph.preprocessing?.resizeShorter)
        XCTAssertEqual(r.graph.preprocessing?.channelOrder, "bgr")
        XCTAssertEqual(r.graph.labels, ["cat", "dog"])
    }

    func testLayerGroups() throws {
        func groups(_ file: String, config: JSONValue? = nil) throws -> [LayerGroup] {
            try LayerGrouping(graph: try ArchitectureRecognizer.recognize(try Fixtures.readSafetensors(file), configJSON: config)).groups
        }
        for (file, stages) in [("resnet_basic.safetensors", ["layer1", "layer2", "layer3", "layer4"]),
                               ("vgg_bn.safetensors", ["features.4", "features.8", "features.11"]),
                               ("densenet.safetensors", ["features.denseblock1", "features.denseblock2"]),
                               ("bert_cls/model.safetensors", ["bert.encoder.layer.0", "bert.encoder.layer.1"])] {
            let gs = try groups(file, config: Fixtures.config("bert_cls"))
            XCTAssertEqual(gs.first?.kind, .stem, file)
            XCTAssertEqual(gs.filter { $0.kind == .stage }.map(\.name), stages, file)
            XCTAssertEqual(gs.last?.kind, .head, file)
            let all = gs.flatMap { $0.parameters + $0.buffers }
            XCTAssertEqual(all.count, Set(all).count, "each tensor in one group")
        }
        let eff = try groups("efficientnet.safetensors")
        XCTAssertEqual(eff.first?.kind, .stem)
        XCTAssertEqual(eff.first?.parameters.first?.hasPrefix("features.0."), true)
        XCTAssertEqual(eff.last?.parameters.sorted(), ["classifier.1.bias", "classifier.1.weight"])
    }

    func testSHA256() throws {
        XCTAssertEqual(SHA256.hex(of: Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: [UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd-sized pieces equals one shot, across block boundaries.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var s = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 3, 200, 604] { s.update(data[i..<(i + step)]); i += step }
        // A copy taken mid-stream is a value of its own.
        var half = SHA256()
        half.update(data[0..<500])
        var other = half
        other.update(data[500...])
        XCTAssertEqual(SHA256.hex(half.finalize()), SHA256.hex(of: data[0..<500]))
        XCTAssertEqual(SHA256.hex(other.finalize()), SHA256.hex(of: data))
        XCTAssertEqual(SHA256.hex(s.finalize()), SHA256.hex(of: data))
        let tmp = TempDir("sha")
        let path = tmp.file("data")
        try Data(data).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try SHA256.hex(ofFile: path), SHA256.hex(of: data))
    }
}
