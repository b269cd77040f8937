import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// The planner's memory-access proof (AccessCheck.swift, `StepKernel.extents`) and the run-time
/// index checks: a kernel whose parameters reach past a buffer is refused before running, constant
/// gather indices are checked at plan time and data-dependent ones where they are read, each error
/// naming the node. That no planned kernel is refused wrongly is shown by every fixture graph of
/// the ONNX ops and parity suites, which plan through the same check.
final class AccessCheckTests: XCTestCase {
    func testExtentsFollowKernelParameters() {
        // A fill holding more values than its output's shape: the write would overflow.
        XCTAssertEqual(Fill(values: .list([1, 2, 3])).extents(inputs: [], outputs: [2]).writes, [3])
        // A slice whose start and step reach past the axis reads past the input; negative steps too.
        let bad = SlicePlan(inShape: [4], starts: [2], steps: [2], outShape: [2])
        XCTAssertEqual(Slice(plan: bad).extents(inputs: [4], outputs: [2]).reads, [Int.max])
        let good = SlicePlan(inShape: [5], starts: [2], steps: [2], outShape: [2])
        XCTAssertEqual(Slice(plan: good).extents(inputs: [5], outputs: [2]).reads, [5])
        let backwards = SlicePlan(inShape: [5], starts: [4], steps: [-2], outShape: [3])
        XCTAssertEqual(Slice(plan: backwards).extents(inputs: [5], outputs: [3]).reads, [5])
        let belowZero = SlicePlan(inShape: [5], starts: [1], steps: [-2], outShape: [2])
        XCTAssertEqual(Slice(plan: belowZero).extents(inputs: [5], outputs: [2]).reads, [Int.max])
        // A view cannot show more elements than its source holds.
        XCTAssertEqual(View().extents(inputs: [6], outputs: [8]).reads, [8])
        // Broadcast operands are read along their strides only.
        let p = BroadcastPlan([2, 1, 3], [4, 1])!
        XCTAssertEqual(Binary(kind: .add, plan: p).extents(inputs: [6, 4], outputs: [24]).reads, [6, 4])
        // Pad's source indices (reflect, wrap) lie inside the input; a pad whose rank disagrees does not.
        let pad = Pad(shape: [3], outShape: [5], pads: [1, 1], mode: "reflect", value: 0)
        XCTAssertEqual(pad.extents(inputs: [3], outputs: [5]).reads, [3])
        XCTAssertEqual(Pad(shape: [2], outShape: [7], pads: [0, 5], mode: "wrap", value: 0).extents(inputs: [2], outputs: [7]).reads, [2])
        XCTAssertEqual(Pad(shape: [2], outShape: [4, 1], pads: [1, 1], mode: "constant", value: 0).extents(inputs: [2], outputs: [4]).reads, [Int.max])
        // A convolution's geometry, not its planned shapes, says what it touches.
        let g = ConvGeometry(n: 1, c: 2, h: 4, w: 4, o: 3, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, pb: 1, pr: 1, dh: 1, dw: 1, groups: 1)
        let conv = Conv2d(geometry: g).extents(inputs: [32, 54, 3], outputs: [48])
        XCTAssertEqual(conv.reads, [32, 54, 3])
        XCTAssertEqual(conv.writes, [48])
        // A gather states its index input and the axis bound its constant indices are checked against.
        let gather = Gather(outer: 1, axisLen: 3, inner: 2, dataInput: 0, indexInput: 1).extents(inputs: [6, 4], outputs: [8])
        XCTAssertEqual(gather.writes, [8])
        XCTAssertEqual(gather.indices.map(\.input), [1])
        XCTAssertEqual(gather.indices.map(\.bound), [3])
    }

    func testOverflowingStepIsRefusedBeforeRunning() throws {
        let g = singleNodeGraph(.relu, inputShapes: [[2, 3]])
        let s = try InferenceSession(graph: g)
        _ = try s.run(["x": Tensor(shape: [2, 3], floats: [Float](repeating: 1, count: 6))])
        var st = s.executor.steps[0]
        st.kernel = ActivationKernel(activation: .relu, count: 7)
        XCTAssertThrowsError(try s.executor.checkAccesses(st, shapes: s.executor.shapes, constant: { _ in nil })) { e in
            XCTAssertTrue("\(e)".contains("node 'n0'") && "\(e)".contains("read 7 elements of input 0") && "\(e)".contains("holds 6"), "\(e)")
            XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
        }
        // A write past the output is refused the same way.
        st.kernel = Fill(values: .constant(0, count: 9))
        XCTAssertThrowsError(try s.executor.checkAccesses(st, shapes: s.executor.shapes, constant: { _ in nil })) { e in
            XCTAssertTrue("\(e)".contains("node 'n0'") && "\(e)".contains("write 9 elements to output 0"), "\(e)")
        }
    }

    func testConstantGatherIndicesCheckedAtPlanTime() throws {
        let g = singleNodeGraph(.gather, attrs: ["axis": .int(0)], inputShapes: [[3, 2]], params: [("i", Tensor(shape: [2], floats: [1, 5]))])
        XCTAssertThrowsError(try runGraph(g, ["x": Tensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6])])) { e in
            XCTAssertTrue("\(e)".contains("node 'n0'") && "\(e)".contains("constant index 5.0"), "\(e)")
            XCTAssertEqual((e as? WconvError)?.kind, .invalidInput)
        }
    }

    func testDataGatherIndicesCheckedAtRunTime() throws {
        var g = singleNodeGraph(.gather, attrs: ["axis": .int(1)], inputShapes: [[2, 3], [2]])
        g.inputs[1] = ValueInfo(name: "x2", dtype: .i64, shape: [2])
        let s = try InferenceSession(graph: g)
        let x = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try s.run(["x": x, "x2": Tensor(shape: [2], floats: [2, -3])])["y"]?.floats(), [3, 1, 6, 4])
        for bad: Float in [3, -4, 0.5, .nan] {
            XCTAssertThrowsError(try s.run(["x": x, "x2": Tensor(shape: [2], floats: [0, bad])])) { e in
                XCTAssertTrue("\(e)".contains("node 'n0'"), "\(e)")
            }
        }
    }
}
