import OrderedCollections
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Backward of the differentiable ONNX-only ops against central finite differences. Each graph
/// reads a trainable parameter `p` through h = x · p (x all ones) so the op's input gradient is
/// the parameter's gradient; binary ops also train their second operand `q`.
final class ONNXOpGradientTests: XCTestCase {
    /// x (ones, shape of p) · p → h, then `nodes` (the last writes "y").
    func graph(_ nodes: [GraphNode], p: Tensor, extra: [(String, Tensor)] = [], inputs: [(String, [Int])] = []) -> ModelGraph {
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: p.shape.map { $0 })] + inputs.map { ValueInfo(name: $0.0, shape: $0.1.map { $0 }) }
        g.parameters["p"] = p
        for (n, t) in extra { g.parameters[n] = t }
        g.nodes = [GraphNode(name: "scale", op: .mul, inputs: ["x", "p"], outputs: ["h"])] + nodes
        g.outputs = [ValueInfo(name: "y", shape: [])]
        return g
    }

    func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, floats: [Float](repeating: 1, count: shape.reduce(1, *))) }

    func check(_ nodes: [GraphNode], p: Tensor, extra: [(String, Tensor)] = [], trainExtra: [String] = [],
               inputs: [(String, Tensor)] = [], tol: Double = 2e-2, file: StaticString = #filePath, line: UInt = #line) throws {
        let g = graph(nodes, p: p, extra: extra, inputs: inputs.map { ($0.0, $0.1.shape) })
        var feeds: [String: Tensor] = ["x": ones(p.shape)]
        for (n, t) in inputs { feeds[n] = t }
        try checkGradients(g, inputs: feeds, trainable: ["p"] + trainExtra, eps: 1e-3, tol: tol, samples: 24, file: file, line: line)
    }

    func node(_ op: Op, _ inputs: [String] = ["h"], outputs: [String] = ["y"], _ attrs: [String: AttributeValue] = [:]) -> GraphNode {
        GraphNode(name: "n_\(op)_\(outputs[0])", op: op, inputs: inputs, outputs: outputs, attributes: attrs)
    }

    func testUnaryMathGradients() throws {
        var rng = TestRNG(11)
        let shape = [2, 3, 4]
        for op in [Op.erf, .exp, .neg, .abs] {
            try check([node(op)], p: rng.tensor(shape, scale: 2))
        }
        // sqrt, log and reciprocal on positive inputs away from 0.
        for op in [Op.sqrt, .log, .reciprocal] {
            try check([node(op)], p: rng.positive(shape))
        }
    }

    func testBinaryGradientsWithBroadcasting() throws {
        var rng = TestRNG(12)
        let p = rng.positive([2, 3, 4]), q = rng.tensor([3, 1])
        try check([node(.pow, ["h", "q"])], p: p, extra: [("q", q)], trainExtra: ["q"])
        try check([node(.minimum, ["h", "q"])], p: rng.tensor([2, 3, 4]), extra: [("q", q)], trainExtra: ["q"])
        try check([node(.maximum, ["h", "q"])], p: rng.tensor([2, 3, 4]), extra: [("q", q)], trainExtra: ["q"])
    }

    func testWhereGradientGoesToTheChosenBranch() throws {
        var rng = TestRNG(13)
        let cond = Tensor(shape: [2, 3, 4], floats: (0..<24).map { Float(($0 * 7) % 3 == 0 ? 1 : 0) })
        try check([node(.where, ["c", "h", "q"])], p: rng.tensor([2, 3, 4]), extra: [("q", rng.tensor([4]))],
                  trainExtra: ["q"], inputs: [("c", cond)])
    }

    func testReductionGradients() throws {
        var rng = TestRNG(14)
        let shape = [2, 3, 4]
        try check([node(.reduceMean, ["h"], ["axes": .ints([1]), "keepdims": .int(0)])], p: rng.tensor(shape))
        try check([node(.reduceSum, ["h"], ["axes": .ints([]), "keepdims": .int(1)])], p: rng.tensor(shape))
        try check([node(.reduceMax, ["h"], ["axes": .ints([0, -1]), "keepdims": .int(1)])], p: rng.tensor(shape))
        try check([node(.globalMaxPool, ["h"], ["keepdims": .int(1)])], p: rng.tensor([2, 3, 3, 3]))
    }

    func testShapeOpGradients() throws {
        var rng = TestRNG(15)
        let p = rng.tensor([2, 3, 4])
        // Views: the gradient must flow through them unchanged into a consumer that has a real backward.
        try check([node(.unsqueeze, ["h"], outputs: ["u"], ["axes": .ints([0, 3])]),
                   node(.squeeze, ["u"], outputs: ["s"], ["axes": .ints([0])]),
                   node(.exp, ["s"])], p: p)
        try check([node(.expand, ["h"], ["shape": .ints([3, 2, 1, 4])])], p: p)
        try check([node(.tile, ["h"], ["repeats": .ints([2, 1, 3])])], p: p)
        // Split pieces reach y through different paths, so both pieces' gradients are checked.
        try check([node(.split, ["h"], outputs: ["a", "b"], ["axis": .int(2), "split": .ints([1, 3])]),
                   node(.mul, ["b", "b"], outputs: ["bb"]),
                   node(.add, ["a", "bb"])], p: p)
        let idx = Tensor(shape: [2, 2, 1], floats: [2, 0, 1, 1])
        try check([node(.gatherND, ["h", "idx"], ["batchDims": .int(1)])], p: p, extra: [("idx", idx)])
    }

    func testDecomposedLayerNormAndErfGeluChain() throws {
        // The TorchScript opset < 17 spelling of LayerNorm + GELU, op by op.
        var rng = TestRNG(17)
        let two = Tensor(shape: [], floats: [2]), eps = Tensor(shape: [], floats: [1e-5])
        let half = Tensor(shape: [], floats: [0.5]), one = Tensor(shape: [], floats: [1]), rs2 = Tensor(shape: [], floats: [Float(1 / 2.0.squareRoot())])
        try check([node(.reduceMean, ["h"], outputs: ["m"], ["axes": .ints([-1]), "keepdims": .int(1)]),
                   node(.sub, ["h", "m"], outputs: ["c"]),
                   node(.pow, ["c", "two"], outputs: ["c2"]),
                   node(.reduceMean, ["c2"], outputs: ["v"], ["axes": .ints([-1]), "keepdims": .int(1)]),
                   node(.add, ["v", "eps"], outputs: ["ve"]),
                   node(.sqrt, ["ve"], outputs: ["sd"]),
                   node(.div, ["c", "sd"], outputs: ["n"]),
                   node(.mul, ["n", "rs2"], outputs: ["nr"]),
                   node(.erf, ["nr"], outputs: ["e"]),
                   node(.add, ["e", "one"], outputs: ["e1"]),
                   node(.mul, ["n", "e1"], outputs: ["g"]),
                   node(.mul, ["g", "half"])],
                  p: rng.tensor([2, 3, 8], scale: 2), extra: [("two", two), ("eps", eps), ("half", half), ("one", one), ("rs2", rs2)])
    }

    func testComparisonsHaveNoGradient() throws {
        var rng = TestRNG(16)
        let g = graph([node(.greater, ["h", "q"], outputs: ["m"]), node(.mul, ["m", "h"])], p: rng.tensor([4]), extra: [("q", rng.tensor([4]))])
        let s = try TrainingSession(graph: g, trainable: ["p", "q"])
        let x = ones([4])
        _ = try s.forward(["x": x], training: true)
        let grads = try s.backward(outputGradients: ["y": ones([4])])
        let p = g.parameters["p"]!.floats(), q = g.parameters["q"]!.floats()
        // y = [p > q] · p: dy/dp is the mask, dy/dq is zero.
        XCTAssertEqual(grads["p"]?.floats(), zip(p, q).map { $0 > $1 ? 1 : 0 })
        XCTAssertEqual(grads["q"]?.floats() ?? [0, 0, 0, 0], [0, 0, 0, 0])
    }

    func testBadShapesAreErrorsNamingTheNode() throws {
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: [2, 3])]
        g.nodes = [GraphNode(name: "sq", op: .squeeze, inputs: ["x"], outputs: ["y"], attributes: ["axes": .ints([1])])]
        g.outputs = [ValueInfo(name: "y", shape: [])]
        XCTAssertThrowsError(try g.validate()) { e in
            XCTAssertTrue("\(e)".contains("sq") && "\(e)".contains("[2, 3]"), "\(e)")
        }
        g.nodes = [GraphNode(name: "ex", op: .expand, inputs: ["x", "x"], outputs: ["y"])]
        XCTAssertThrowsError(try g.validate()) { e in XCTAssertTrue("\(e)".contains("run time"), "\(e)") }
        // A hostile constant shape is refused before anything is allocated (and never overflows).
        g.nodes = [GraphNode(name: "big", op: .tile, inputs: ["x"], outputs: ["y"], attributes: ["repeats": .ints([1 << 40, 1 << 40])])]
        XCTAssertThrowsError(try g.validate()) { e in XCTAssertTrue("\(e)".contains("big"), "\(e)") }
        g.nodes = [GraphNode(name: "fill", op: .constantOfShape, inputs: [], outputs: ["y"], attributes: ["shape": .ints([1 << 20, 1 << 20])])]
        XCTAssertThrowsError(try g.validate()) { e in XCTAssertTrue("\(e)".contains("allocate"), "\(e)") }
    }

    func testGatherNDRefusesOutOfRangeIndices() throws {
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: [3, 2])]
        g.parameters["idx"] = Tensor(shape: [1, 1], floats: [5])
        g.nodes = [GraphNode(name: "gnd", op: .gatherND, inputs: ["x", "idx"], outputs: ["y"])]
        g.outputs = [ValueInfo(name: "y", shape: [])]
        let s = try InferenceSession(graph: g)
        XCTAssertThrowsError(try s.run(["x": ones([3, 2])])) { e in
            XCTAssertTrue("\(e)".contains("gnd") && "\(e)".contains("out of range"), "\(e)")
        }
    }
}

/// Gradients through a whole imported ONNX BERT (opset 14: LayerNorm exported decomposed, which the
/// importer may fuse back; the attention-mask path keeps unsqueeze/cast): the trainer's path for ONNX BERTs.
final class ONNXImportedGradientTests: XCTestCase {
    func testImportedBertGradientsMatchFiniteDifferences() throws {
        var g = try GraphImporter.importGraph(path: ONNXOpsParityTests.modelPath("bert_ts_op14")).graph
        let onnxOnly: Set<Op> = [.unsqueeze, .squeeze, .cast, .shape, .where, .expand, .reduceMean, .sqrt, .pow, .erf]
        XCTAssertTrue(g.nodes.contains { onnxOnly.contains($0.op) }, "no ONNX-only op left in the graph")
        // Address the hidden state as "y" for checkGradients.
        g.nodes.append(GraphNode(name: "as_y", op: .identity, inputs: [g.outputs[0].name], outputs: ["y"]))
        g.outputs = [ValueInfo(name: "y", shape: [nil, nil, 32])]
        let probe = try ONNXOpsParityTests.loadProbe("bert_ts_op14")
        // Word embeddings sit below both decomposed LayerNorms; the query bias reaches the output through
        // attention and the second; the intermediate bias through the Erf GELU and the last.
        let trainable = ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.bias",
                         "encoder.layer.0.intermediate.dense.bias"]
        for t in trainable { XCTAssertNotNil(g.parameters[t], t) }
        try checkGradients(g, inputs: probe.inputs, trainable: trainable, eps: 1e-2, tol: 3e-2, samples: 8)
    }
}

/// The differentiable cases of fixtures/onnx/ops (manifest.json "grad", written by
/// tools/fixtures/onnx/gen_ops.py): the float input becomes a trainable parameter holding the probe's
/// values, every output is flattened into one vector y, and each gradient is checked against central
/// finite differences — so an op added by the checklist gets its backward tested with its parity case.
final class FixtureGradientTests: XCTestCase {
    /// Fixture `name` of fixtures/onnx/ops with its one input turned into a trainable parameter
    /// holding the probe's values and every output flattened into one vector "y"; returns the graph
    /// and its trainable float parameters (the input's first).
    static func trainableGraph(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> (ModelGraph, [String]) {
        var g = try GraphImporter.importGraph(path: ONNXOpsParityTests.modelPath(name, dir: "/ops")).graph
        // checkGradients reads "y": a fixture value of that name would be checked instead of the vector below.
        XCTAssertFalse(g.nodes.contains { $0.outputs.contains("y") }, "\(name): rename its value 'y'", file: file, line: line)
        let probe = try ONNXOpsParityTests.loadProbe(name, dir: "/ops")
        XCTAssertEqual(g.inputs.count, 1, name, file: file, line: line)
        let input = g.inputs[0].name, param = input + "::p"
        g.parameters[param] = probe.inputs[input]
        g.inputs = []
        for i in g.nodes.indices { g.nodes[i].inputs = g.nodes[i].inputs.map { $0 == input ? param : $0 } }
        var flat: [String] = []
        for (k, o) in g.outputs.enumerated() {
            g.nodes.append(GraphNode(name: "flat\(k)", op: .flatten, inputs: [o.name], outputs: ["flat\(k)"], attributes: ["axis": .int(0)]))
            flat.append("flat\(k)")
        }
        g.nodes.append(GraphNode(name: "y", op: .concat, inputs: flat, outputs: ["y"], attributes: ["axis": .int(0)]))
        g.outputs = [ValueInfo(name: "y", shape: [nil])]
        // Float weights train too (a transposed convolution's weight and bias).
        let weights = g.parameters.keys.filter { $0 != param && g.parameters[$0]!.dtype.isFloatingPoint && !g.buffers.contains($0) }
        return (g, [param] + weights.sorted())
    }

    func testEveryDifferentiableFixtureMatchesFiniteDifferences() throws {
        let dir = ONNXOpsParityTests.root + "/ops"
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))
        let names = try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["grad"] as? [String])
        XCTAssertFalse(names.isEmpty)
        for name in names {
            print("gradient check \(name)")
            let (g, trainable) = try Self.trainableGraph(name)
            try checkGradients(g, inputs: [:], trainable: trainable, eps: 1e-2, tol: 2e-2, samples: 16)
        }
    }
}
