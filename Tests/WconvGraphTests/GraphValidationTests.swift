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
        g = tiny()
        g.nodes[2].attributes["pads"] = .ints([2, 2, 2, 2])
        assertInvalid(g, mentions: ["'pool'", "exceeds half the kernel"])
        g = tiny()
        g.inputs = [ValueInfo(name: "x", shape: [nil, 3, 2, 2])]
        g.nodes[0].attributes["pads"] = .ints([0, 0, 0, 0])
        assertInvalid(g, mentions: ["'conv'", "height", "smaller than the kernel"])
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
