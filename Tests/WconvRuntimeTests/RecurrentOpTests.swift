import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// LSTM and GRU beyond the generated parity and gradient fixtures (fixtures/onnx/ops, gen_ops.py
/// group `rnn`): what is refused and how, run-time checks of sequence_lens, BPTT through empty
/// sequences and clipped gates.
final class RecurrentOpTests: XCTestCase {
    func testUnknownActivationsAreRefusedNamingTheNode() throws {
        var g = ONNXGraph(name: "rnn")
        g.inputs = [ONNXValueInfo(name: "x", elemType: 1, shape: [.value(4), .value(1), .value(3)])]
        g.outputs = ["a", "b", "c"].map { ONNXValueInfo(name: $0, elemType: 1, shape: nil) }
        var rng = TestRNG(3)
        g.initializers["W"] = rng.tensor([1, 8, 3]); g.initializers["R"] = rng.tensor([1, 8, 2])
        g.initializers["Wg"] = rng.tensor([1, 6, 3]); g.initializers["Rg"] = rng.tensor([1, 6, 2])
        g.nodes = [
            ONNXNode(name: "lstm_gelu", opType: "LSTM", inputs: ["x", "W", "R"], outputs: ["a"],
                     attributes: ["hidden_size": .int(2), "activations": .strings(["Gelu", "Tanh", "Tanh"])]),
            // Bidirectional needs the activations of both directions.
            ONNXNode(name: "gru_half", opType: "GRU", inputs: ["x", "Wg", "Rg"], outputs: ["b"],
                     attributes: ["direction": .string("bidirectional"), "activations": .strings(["Sigmoid", "Tanh"])]),
            ONNXNode(name: "lstm_bad_direction", opType: "LSTM", inputs: ["x", "W", "R"], outputs: ["c"], attributes: ["direction": .string("sideways")]),
        ]
        let model = ONNXModel(irVersion: 8, opsetImports: [ONNXOpsetImport(domain: "", version: 14)], graph: g)
        XCTAssertThrowsError(try ONNXGraphBuilder.build(model)) { e in
            let m = "\(e)"
            for part in ["3 nodes", "'lstm_gelu'", "Gelu", "not one of ONNX's RNN activations", "'gru_half'", "2 functions per direction",
                         "'lstm_bad_direction'", "sideways"] {
                XCTAssertTrue(m.contains(part), "\(part) missing from: \(m)")
            }
        }
        // Activations in any case import.
        g.nodes = [ONNXNode(name: "lstm_default", opType: "LSTM", inputs: ["x", "W", "R"], outputs: ["a"],
                            attributes: ["activations": .strings(["sigmoid", "TANH", "Tanh"])])]
        g.outputs = [ONNXValueInfo(name: "a", elemType: 1, shape: nil)]
        XCTAssertEqual(try ONNXGraphBuilder.build(ONNXModel(irVersion: 8, opsetImports: [ONNXOpsetImport(domain: "", version: 14)], graph: g)).nodes.map(\.op), [.lstm])
    }

    func testOmittedOutputsStayOmittedOnExport() throws {
        // lstm_op14's last LSTM omits Y and Y_c: the importer names them for the kernel, the exporter
        // omits them again.
        let g = try GraphImporter.importGraph(path: ONNXOpsParityTests.modelPath("lstm_op14", dir: "/ops")).graph
        let lstms = g.nodes.filter { $0.op == .lstm }
        XCTAssertEqual(lstms.count, 4)
        XCTAssertTrue(lstms[3].outputs[0].hasSuffix("::Y"), "\(lstms[3].outputs)")
        let exported = try ONNXGraphExporter.model(g).graph.nodes.filter { $0.opType == "LSTM" }
        XCTAssertEqual(exported.map { $0.outputs.filter(\.isEmpty).count }, [0, 0, 0, 2])
        XCTAssertEqual(exported[3].outputs[1], lstms[3].outputs[1])
    }

    func testExportsReimportAndLandForTheInteropCheck() throws {
        // tools/interop/check_onnx.py runs these exports in onnxruntime against the fixtures' probes
        // (all but layout 1, which onnxruntime refuses; its export still re-imports here).
        let dir = URL(fileURLWithPath: ONNXOpsParityTests.root).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/interop/onnx").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let names = try ONNXOpsParityTests.probeNames(dir: "/ops").filter { ["lstm_", "gru_", "rnn_"].contains(where: $0.hasPrefix) }
        XCTAssertEqual(names.count, 10)
        for name in names {
            let g = try GraphImporter.importGraph(path: ONNXOpsParityTests.modelPath(name, dir: "/ops")).graph
            let out = name.contains("layout1") ? FileManager.default.temporaryDirectory.appendingPathComponent("wconv-\(UUID().uuidString).onnx").path
                : dir + "/" + name + ".onnx"
            defer { if name.contains("layout1") { try? FileManager.default.removeItem(atPath: out) } }
            try ONNXGraphExporter.export(g, to: out)
            XCTAssertEqual(try GraphImporter.importGraph(path: out).graph.nodes.map(\.op), g.nodes.map(\.op), name)
        }
    }

    func testWrongWeightShapesNameTheNode() throws {
        var rng = TestRNG(4)
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: [4, 2, 3])]
        g.parameters["W"] = rng.tensor([2, 8, 3]); g.parameters["R"] = rng.tensor([2, 8, 2])
        g.nodes = [GraphNode(name: "enc", op: .lstm, inputs: ["x", "W", "R"], outputs: ["y"], attributes: ["direction": .string("forward")])]
        g.outputs = [ValueInfo(name: "y", shape: [])]
        XCTAssertThrowsError(try g.validate()) { e in
            XCTAssertTrue("\(e)".contains("'enc'") && "\(e)".contains("[1, 8, 3]"), "\(e)")
        }
    }

    func testSequenceLengthsOutsideTheSequenceAreRefusedAtRunTime() throws {
        let g = try GraphImporter.importGraph(path: ONNXOpsParityTests.modelPath("rnn_lens_op9", dir: "/ops")).graph
        var probe = try ONNXOpsParityTests.loadProbe("rnn_lens_op9", dir: "/ops")
        let s = try InferenceSession(graph: g)
        probe.inputs["lens"] = ONNXReader.int64Tensor([4, 5, 1], shape: [3])
        XCTAssertThrowsError(try s.run(probe.inputs)) { e in
            XCTAssertTrue("\(e)".contains("sequence_lens[1] = 5") && "\(e)".contains("node '"), "\(e)")
        }
    }

    func testGradientsThroughShortAndEmptySequences() throws {
        // Bidirectional LSTM and GRU (linear_before_reset 0) over lengths 3, 0 and 1 of 3 steps: the
        // empty sequence contributes nothing, steps past an end pass the state's gradient through.
        var rng = TestRNG(5)
        for (op, gates) in [(Op.lstm, 4), (Op.gru, 3)] {
            var g = ModelGraph()
            g.parameters["x"] = rng.tensor([3, 3, 2])
            g.parameters["W"] = rng.tensor([2, gates * 2, 2]); g.parameters["R"] = rng.tensor([2, gates * 2, 2])
            g.parameters["B"] = rng.tensor([2, 2 * gates * 2]); g.parameters["h0"] = rng.tensor([2, 3, 2])
            g.parameters["lens"] = ONNXReader.int64Tensor([3, 0, 1], shape: [3])
            g.buffers = ["lens"]
            let outs = op == .lstm ? ["Y", "Yh", "Yc"] : ["Y", "Yh"]
            g.nodes = [GraphNode(name: "rnn", op: op, inputs: ["x", "W", "R", "B", "lens", "h0"], outputs: outs,
                                 attributes: ["direction": .string("bidirectional"), "hiddenSize": .int(2)])]
            g.nodes += outs.enumerated().map { k, o in GraphNode(name: "f\(k)", op: .flatten, inputs: [o], outputs: ["f\(k)"], attributes: ["axis": .int(0)]) }
            g.nodes.append(GraphNode(name: "cat", op: .concat, inputs: outs.indices.map { "f\($0)" }, outputs: ["y"], attributes: ["axis": .int(0)]))
            g.outputs = [ValueInfo(name: "y", shape: [nil])]
            try checkGradients(g, inputs: [:], trainable: ["x", "W", "R", "B", "h0"], eps: 1e-2, tol: 2e-2, samples: 24)
            // The empty sequence's final states are zero (onnxruntime's reading), not h0.
            let y = try XCTUnwrap(try InferenceSession(graph: g).run([:])["y"]).floats()
            // y = Y [3, 2, 3, 2] then Y_h [2, 3, 2]: sequence 1's final state in both directions.
            XCTAssertEqual(Array(y[38..<40]) + Array(y[44..<46]), [0, 0, 0, 0])
            XCTAssertNotEqual(Array(y[36..<38]), [0, 0])
        }
    }

    func testClippedAndCoupledGatesGradients() throws {
        // fixtures/onnx/ops/rnn_clip_op14 (LSTM with clip and peepholes, LSTM with input_forget, GRU
        // with clip with and without linear_before_reset): every element of every parameter, with a
        // step small enough not to cross the clip bounds' kinks (1e-2 does for a few).
        let (g, trainable) = try FixtureGradientTests.trainableGraph("rnn_clip_op14")
        XCTAssertEqual(g.nodes.compactMap { $0.float("clip") }.count, 3)
        XCTAssertTrue(g.nodes.contains { $0.int("inputForget") == 1 })
        try checkGradients(g, inputs: [:], trainable: trainable, eps: 1e-3, tol: 2e-2, samples: 1000)
    }

    func testEveryActivationFunctionsGradients() throws {
        // fixtures/onnx/ops/rnn_activations_op14: all eleven of ONNX's RNN activations (alphas and
        // betas given and defaulted, one with clip) in LSTM and GRU nodes; every element, with a
        // step below the piecewise ones' kinks.
        let (g, trainable) = try FixtureGradientTests.trainableGraph("rnn_activations_op14")
        let used = Set(g.nodes.flatMap { n -> [String] in
            guard case .strings(let a)? = n.attributes["activations"] else { return [] }
            return a.map { $0.lowercased() }
        })
        XCTAssertEqual(used, Set(RecurrentActivation.Kind.allCases.map(\.rawValue)))
        try checkGradients(g, inputs: [:], trainable: trainable, eps: 3e-4, tol: 2e-2, samples: 1000)
    }

    func testDeclaredOutputShapesTheGraphDoesNotComputeAreReportedNotRefused() throws {
        // ddddocr's recogniser declares [1, ?] for its [T, 1, classes] output; onnxruntime warns and runs.
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: [2, 3])]
        g.nodes = [GraphNode(name: "r", op: .relu, inputs: ["x"], outputs: ["y"])]
        g.outputs = [ValueInfo(name: "y", shape: [1, nil])]
        let spec = try g.specialize(inputShapes: ["x": [2, 3]])
        XCTAssertEqual(spec.shapes["y"], [2, 3])
        XCTAssertEqual(spec.outputShapeMismatches, ["graph output 'y' is declared [1, ?] but the graph computes [2, 3]"])
        XCTAssertEqual(try InferenceSession(graph: g).run(["x": Tensor(zeros: [2, 3])])["y"]?.shape, [2, 3])
    }
}
