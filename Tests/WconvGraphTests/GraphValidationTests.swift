import WconvGraph
import WconvTensor
import XCTest

/// Shape inference and validation: bad graphs fail before any compute, naming node, op and shapes.
final class GraphValidationTests: XCTestCase {
    func tiny(convWeight: [Int] = [8, 3, 3, 3], group: Int = 1, fcIn: Int = 8) -> ModelGraph {
        var g = ModelGraph()
        g.inputs = [ValueInfo(name: "x", shape: [nil, 3, nil, nil])]
        g.parameters["conv.weight"] = Tensor(zeros: convWeight)
        g.parameters["bn.weight"] = Tensor(zeros: [8]); g.parameters["bn.bias"] = Tensor(zeros: [8])
        g.parameters["bn.running_mean"] = Tensor(zeros: [8]); g.parameters["bn.running_var"] = Tensor(zeros: [8])
        g.parameters["fc.weight"] = Tensor(zeros: [5, fcIn])
        g.buffers = ["bn.running_mean", "bn.running_var"]
        g.nodes = [
            GraphNode(name: "conv", op: .conv2d, inputs: ["x", "conv.weight"], outputs: ["c"],
                      attributes: ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "group": .int(group)]),
            GraphNode(name: "bn", op: .batchNorm, inputs: ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], outputs: ["b"]),
            GraphNode(name: "pool", op: .maxPool2d, inputs: ["b"], outputs: ["p"],
                      attributes: ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceilMode": .int(1)]),
            GraphNode(name: "gap", op: .globalAvgPool, inputs: ["p"], outputs: ["g"], attributes: ["keepdims": .int(0)]),
            GraphNode(name: "fc", op: .linear, inputs: ["g", "fc.weight", ""], outputs: ["y"]),
        ]
        g.outputs = [ValueInfo(name: "y", shape: [nil, 5])]
        return g
    }

    func testInferShapes() throws {
        let s = try tiny().inferShapes(inputShapes: ["x": [2, 3, 17, 15]])
        XCTAssertEqual(s["c"], [2, 8, 9, 8])
        // ceil mode: (9 + 2 - 3)/2 ceil + 1 = 5; (8 + 2 - 3)/2 → ceil 3.5 = 4, + 1 = 5, last window starts at 8 ≥ 8 + 1? no → 5
        XCTAssertEqual(s["p"], [2, 8, 5, 5])
        XCTAssertEqual(s["y"], [2, 5])
        XCTAssertNoThrow(try tiny().validate())
    }

    /// The benches' FLOP counts: 2 per multiply-add of conv and linear; training adds a weight
    /// gradient per trainable weight and an input gradient above the lowest trainable layer.
    func testFLOPsCountGEMMOpsAndTheBackwardTrainingRuns() throws {
        let conv = 2.0 * (2 * 8 * 9 * 8) * (3 * 3 * 3), fc = 2.0 * (2 * 5) * 8
        let shapes = ["x": [2, 3, 17, 15]]
        XCTAssertEqual(try ModelFLOPs(tiny(), inputShapes: shapes).forward, conv + fc)
        XCTAssertEqual(try ModelFLOPs(tiny(), inputShapes: shapes, trainable: ["fc.weight"]).trainingStep, conv + 2 * fc)
        XCTAssertEqual(try ModelFLOPs(tiny(), inputShapes: shapes, trainable: ["conv.weight", "fc.weight"]).trainingStep, 2 * conv + 3 * fc)
    }

    func testCeilModeDropsWindowStartingInPadding() throws {
        // PyTorch: MaxPool2d(2, 2, ceil_mode=True) on 5 → 3; with padding 1 on size 4 → 3 (not 4).
        var g = ModelGraph(inputs: [ValueInfo(name: "x", shape: [1, 1, 4, 5])])
        g.nodes = [GraphNode(name: "p", op: .maxPool2d, inputs: ["x"], outputs: ["y"],
                             attributes: ["kernel": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([1, 0, 1, 0]), "ceilMode": .int(1)])]
        g.outputs = [ValueInfo(name: "y", shape: [nil, nil, nil, nil])]
        XCTAssertEqual(try g.inferShapes(inputShapes: [:])["y"], [1, 1, 3, 3])
    }

    func assertInvalid(_ g: ModelGraph, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try g.validate(), file: file, line: line) { e in
            let err = e as? WconvError
            XCTAssertEqual(err?.kind, .invalidInput, file: file, line: line)
            for w in words { XCTAssertTrue(err?.message.contains(w) ?? false, "'\(w)' not in: \(err?.message ?? "\(e)")", file: file, line: line) }
        }
    }

    func testConvChannelMismatchNamesNodeAndShapes() {
        assertInvalid(tiny(convWeight: [8, 4, 3, 3]), mentions: ["'conv'", "conv2d", "[8, 4, 3, 3]", "3 channels"])
        assertInvalid(tiny(convWeight: [8, 1, 3, 3], group: 2), mentions: ["'conv'", "group 2"])
        XCTAssertNoThrow(try { var g = tiny(convWeight: [8, 1, 3, 3], group: 3); g.parameters["conv.weight"] = Tensor(zeros: [9, 1, 3, 3])
            for k in ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"] { g.parameters[k] = Tensor(zeros: [9]) }
            g.parameters["fc.weight"] = Tensor(zeros: [5, 9]); try g.validate() }())
    }

    func testLinearInFeaturesAndBNSize() {
        assertInvalid(tiny(fcIn: 7), mentions: ["'fc'", "linear", "7 input features", "[5, 7]"])
        var g = tiny()
        g.parameters["bn.running_var"] = Tensor(zeros: [6])
        assertInvalid(g, mentions: ["'bn'", "batchNorm", "bn.running_var", "[6]"])
    }

    func testTopologicalOrderAndDanglingInputs() {
        var g = tiny()
        g.nodes.swapAt(0, 1)
        assertInvalid(g, mentions: ["'bn'", "topological"])
        g = tiny()
        g.nodes[2].inputs = ["nowhere"]
        assertInvalid(g, mentions: ["'pool'", "nowhere", "dangling"])
        g = tiny()
        g.outputs = [ValueInfo(name: "missing", shape: [nil])]
        assertInvalid(g, mentions: ["missing", "not produced"])
        g = tiny()
        g.nodes[1].outputs = ["c"]
        assertInvalid(g, mentions: ["'bn'", "already produced"])
    }

    func testUnknownOpAndBadAttributes() {
        var g = tiny()
        g.nodes[3] = GraphNode(name: "gap", op: "frobnicate", inputs: ["p"], outputs: ["g"])
        assertInvalid(g, mentions: ["'gap'", "frobnicate", "no shape rule"])
        // Stored graphs from other builders may carry ops without rules: checked around them.
        XCTAssertNoThrow(try g.validate(allowUnknownOps: true))
        var h = g
        h.nodes[4].inputs[1] = "nowhere"
        XCTAssertThrowsError(try h.validate(allowUnknownOps: true), "structure is still checked")
        g = tiny()
        g.nodes[2].attributes["pads"] = .ints([2, 2, 2, 2])
        assertInvalid(g, mentions: ["'pool'", "exceeds half the kernel"])
        g = tiny()
        g.inputs = [ValueInfo(name: "x", shape: [nil, 3, 2, 2])]
        g.nodes[0].attributes["pads"] = .ints([0, 0, 0, 0])
        assertInvalid(g, mentions: ["'conv'", "height", "smaller than the kernel"])
    }

    /// Attributes as an untrusted canonical file could carry them: extreme values never trap,
    /// they fail validation (or pass when harmless).
    func testHostileAttributesNeverCrash() {
        let extremes = [Int.max, Int.min, -1, 0, 1 << 40, Int.max / 2]
        let keys = ["strides", "pads", "kernel", "group", "dilations", "axis", "outputSize", "shape", "perm", "keepdims"]
        var failures = 0
        for node in 0..<5 {
            for key in keys {
                for v in extremes {
                    var g = tiny()
                    g.nodes[node].attributes[key] = key == "group" || key == "axis" || key == "keepdims" ? .int(v) : .ints([v, v, v, v])
                    do { try g.validate() } catch { failures += 1 }
                }
            }
        }
        XCTAssertGreaterThan(failures, 50)
        var g = tiny()
        g.nodes[3] = GraphNode(name: "gap", op: .reshape, inputs: ["p"], outputs: ["g"], attributes: ["shape": .ints([Int.max, Int.max])])
        assertInvalid(g, mentions: ["'gap'", "overflow"])
        g = tiny()
        g.nodes[2].attributes["strides"] = .ints([Int.max, Int.max])
        assertInvalid(g, mentions: ["'pool'"])
    }

    func testInputShapeMismatch() {
        XCTAssertThrowsError(try tiny().inferShapes(inputShapes: ["x": [1, 4, 16, 16]])) { e in
            XCTAssertTrue("\(e)".contains("'x'") && "\(e)".contains("[1, 4, 16, 16]"), "\(e)")
        }
        XCTAssertThrowsError(try tiny().inferShapes(inputShapes: ["x": [1, 3, 16]])) { e in
            XCTAssertTrue("\(e)".contains("'x'"))
        }
    }

    func testRegisteredCustomRule() throws {
        ShapeInference.register("doubleWidth") { node, ins in
            guard let x = ins.first ?? nil else { throw WconvError.invalid("\(node.name): no input") }
            return [Array(x.dropLast()) + [x.last! * 2]]
        }
        var g = ModelGraph(inputs: [ValueInfo(name: "x", shape: [1, 3])])
        g.nodes = [GraphNode(name: "d", op: "doubleWidth", inputs: ["x"], outputs: ["y"])]
        XCTAssertEqual(try g.inferShapes(inputShapes: [:])["y"], [1, 6])
    }

    /// One node over given input shapes → its output shape (or the error text).
    func shape(_ op: Op, _ shapes: [[Int]], _ attrs: [String: AttributeValue] = [:]) -> String {
        let names = shapes.indices.map { "x\($0)" }
        var g = ModelGraph(inputs: zip(names, shapes).map { ValueInfo(name: $0, shape: $1.map { $0 }) })
        g.nodes = [GraphNode(name: "n", op: op, inputs: names, outputs: ["y"], attributes: attrs)]
        g.outputs = [ValueInfo(name: "y", shape: [])]
        do { return "\(try g.inferShapes(inputShapes: [:])["y"]!)" } catch { return "error: \(error)" }
    }

    func testGeneralOpRules() {
        XCTAssertEqual(shape(.matmul, [[2, 1, 3, 4], [5, 4, 6]]), "[2, 5, 3, 6]")
        XCTAssertEqual(shape(.matmul, [[4], [3, 4, 6]]), "[3, 6]")
        XCTAssertEqual(shape(.matmul, [[3, 4], [4]]), "[3]")
        XCTAssertTrue(shape(.matmul, [[3, 4], [5, 6]]).contains("inner dims differ: 4 vs 5"))
        XCTAssertEqual(shape(.add, [[2, 1, 5], [3, 1]]), "[2, 3, 5]")
        XCTAssertTrue(shape(.mul, [[2, 3], [4]]).contains("do not broadcast"))
        XCTAssertEqual(shape(.concat, [[2, 3, 4], [2, 5, 4]], ["axis": .int(-2)]), "[2, 8, 4]")
        XCTAssertTrue(shape(.concat, [[2, 3, 4], [1, 5, 4]], ["axis": .int(1)]).contains("differ outside axis 1"))
        XCTAssertEqual(shape(.reshape, [[2, 3, 4]], ["shape": .ints([0, -1])]), "[2, 12]")
        XCTAssertTrue(shape(.reshape, [[2, 3, 4]], ["shape": .ints([5, -1])]).contains("cannot reshape 24"))
        XCTAssertEqual(shape(.transpose, [[2, 3, 4]], ["perm": .ints([2, 0, 1])]), "[4, 2, 3]")
        XCTAssertTrue(shape(.transpose, [[2, 3, 4]], ["perm": .ints([0, 0, 1])]).contains("not a permutation"))
        XCTAssertEqual(shape(.gather, [[5, 6, 7], [2, 3]], ["axis": .int(1)]), "[5, 2, 3, 7]")
        XCTAssertEqual(shape(.pad, [[1, 2, 3]], ["pads": .ints([0, 1, 2, 0, 1, 2])]), "[1, 4, 7]")
        XCTAssertEqual(shape(.flatten, [[2, 3, 4, 5]], ["axis": .int(2)]), "[2, 3, 20]")
        XCTAssertEqual(shape(.softmax, [[2, 3]], ["axis": .int(-1)]), "[2, 3]")
        XCTAssertTrue(shape(.softmax, [[2, 3]], ["axis": .int(2)]).contains("axis 2 is out of range"))
        XCTAssertEqual(shape(.globalAvgPool, [[2, 3, 4, 5]], ["keepdims": .int(0)]), "[2, 3]")
        XCTAssertEqual(shape(.adaptiveAvgPool2d, [[2, 3, 4, 5]], ["outputSize": .ints([7, 7])]), "[2, 3, 7, 7]")
        XCTAssertEqual(shape(.avgPool2d, [[1, 1, 5, 5]], ["kernel": .ints([2, 2]), "strides": .ints([2, 2]), "ceilMode": .int(1)]), "[1, 1, 3, 3]")
        XCTAssertEqual(shape(.layerNorm, [[2, 7, 8], [8], [8]]), "[2, 7, 8]")
        XCTAssertTrue(shape(.layerNorm, [[2, 7, 8], [7], [7]]).contains("trailing dims"))
    }

    func testNewOpRulesAndRefusals() {
        // Resize: floor(dim · scale) per axis, sizes, opset 18 axes; hostile sizes refused by name.
        XCTAssertEqual(shape(.resize, [[1, 2, 5, 7]], ["scales": .floats([1, 1, 2, 1.5])]), "[1, 2, 10, 10]")
        XCTAssertEqual(shape(.resize, [[1, 2, 5, 7]], ["sizes": .ints([3, 4]), "axes": .ints([2, 3])]), "[1, 2, 3, 4]")
        XCTAssertEqual(shape(.resize, [[1, 2, 5, 7]], ["sizes": .ints([10, 10]), "axes": .ints([2, 3]), "keepAspectRatio": .string("not_larger")]), "[1, 2, 7, 10]")
        let huge = shape(.resize, [[1, 1, 1, 4]], ["sizes": .ints([1, 1, 1, 1 << 25])])
        XCTAssertTrue(huge.contains("node 'n'") && huge.contains("2^24"), huge)
        XCTAssertTrue(shape(.resize, [[1, 1, 4, 4]], ["mode": .string("area"), "scales": .floats([1, 1, 2, 2])]).contains("mode 'area'"))
        // ConvTranspose: (in − 1)·s − pads + d·(k − 1) + output_padding + 1; output_shape; SAME_UPPER.
        XCTAssertEqual(shape(.convTranspose2d, [[1, 4, 5, 6], [4, 3, 3, 3]], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "outputPadding": .ints([1, 0])]), "[1, 3, 10, 11]")
        XCTAssertEqual(shape(.convTranspose2d, [[1, 4, 5, 6], [4, 2, 3, 3]], ["group": .int(2), "strides": .ints([2, 2]), "autoPad": .string("SAME_UPPER")]), "[1, 4, 10, 12]")
        XCTAssertTrue(shape(.convTranspose2d, [[1, 4, 5, 6], [4, 3, 3, 3]], ["strides": .ints([2, 2]), "outputPadding": .ints([2, 0])]).contains("smaller than the stride"))
        // Pad modes, negative pads, axes; a pad asking for gigabytes is refused.
        XCTAssertEqual(shape(.pad, [[1, 2, 4, 5]], ["pads": .ints([0, -1, 1, 2, 0, 0, -1, 1])]), "[1, 1, 4, 8]")
        XCTAssertEqual(shape(.pad, [[1, 2, 4, 5]], ["pads": .ints([2, 1, 1, 0]), "axes": .ints([2, -1]), "mode": .string("reflect")]), "[1, 2, 7, 6]")
        XCTAssertTrue(shape(.pad, [[1, 2, 4, 5]], ["pads": .ints([0, 0, 4, 0, 0, 0, 0, 0]), "mode": .string("reflect")]).contains("smaller than the dim"))
        XCTAssertTrue(shape(.pad, [[1, 1, 1, 1]], ["pads": .ints([0, 0, 0, 0, 0, 0, 1 << 20, 1 << 20])]).contains("larger than"))
        // Slice with negative steps and INT64 edge markers.
        XCTAssertEqual(shape(.slice, [[4, 5]], ["starts": .ints([-1, Int.max]), "ends": .ints([Int.min, 0]), "axes": .ints([0, 1]), "steps": .ints([-1, -2])]), "[4, 2]")
        XCTAssertEqual(shape(.flatten, [[2, 3, 4, 5]], ["axis": .int(0), "end": .int(1)]), "[6, 4, 5]")
    }

    func testTransformerOps() throws {
        var g = ModelGraph(inputs: [ValueInfo(name: "ids", dtype: .i64, shape: [nil, nil])])
        g.parameters["emb"] = Tensor(zeros: [10, 8])
        g.nodes = [
            GraphNode(name: "e", op: .embedding, inputs: ["ids", "emb"], outputs: ["e"]),
            GraphNode(name: "pos", op: .arange, inputs: ["ids"], outputs: ["pos"], attributes: ["axis": .int(1)]),
            GraphNode(name: "a", op: .attention, inputs: ["e", "e", "e"], outputs: ["a"], attributes: ["heads": .int(2)]),
            GraphNode(name: "s", op: .slice, inputs: ["a"], outputs: ["s"], attributes: ["starts": .ints([0]), "ends": .ints([Int.max]), "axes": .ints([1]), "steps": .ints([2])]),
        ]
        g.outputs = [ValueInfo(name: "s", shape: [nil, nil, 8])]
        let s = try g.inferShapes(inputShapes: ["ids": [3, 5]])
        XCTAssertEqual(s["pos"], [5])
        XCTAssertEqual(s["a"], [3, 5, 8])
        XCTAssertEqual(s["s"], [3, 3, 8])
        g.nodes[2].attributes["heads"] = .int(3)
        XCTAssertThrowsError(try g.inferShapes(inputShapes: ["ids": [3, 5]])) { XCTAssertTrue("\($0)".contains("heads 3")) }
    }
}
