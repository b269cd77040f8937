import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// The planner's memory-access proof (AccessCheck.swift) and the run-time index checks: a kernel
/// whose parameters reach past a buffer is refused before running, constant gather indices are
/// checked at plan time and data-dependent ones where they are read, each error naming the node.
final class AccessCheckTests: XCTestCase {
    func testExtentsFollowKernelParameters() {
        // A constant step holding more values than its output's shape: the write would overflow.
        XCTAssertEqual(Kernel.onnx(.constant([1, 2, 3])).extents(inputs: [], outputs: [2]).writes, [3])
        // A slice whose start and step reach past the axis reads past the input.
        let bad = SlicePlan(inShape: [4], starts: [2], steps: [2], outShape: [2])
        XCTAssertEqual(Kernel.slice(bad).extents(inputs: [4], outputs: [2]).reads, [Int.max])
        let good = SlicePlan(inShape: [5], starts: [2], steps: [2], outShape: [2])
        XCTAssertEqual(Kernel.slice(good).extents(inputs: [5], outputs: [2]).reads, [5])
        // A view cannot show more elements than its source holds.
        XCTAssertEqual(Kernel.view.extents(inputs: [6], outputs: [8]).reads, [8])
        // Broadcast operands are read along their strides only.
        let p = BroadcastPlan([2, 1, 3], [4, 1])!
        XCTAssertEqual(Kernel.binary(.add, p).extents(inputs: [6, 4], outputs: [24]).reads, [6, 4])
    }

    func testOverflowingStepIsRefusedBeforeRunning() throws {
        let g = singleNodeGraph(.relu, inputShapes: [[2, 3]])
        let s = try InferenceSession(graph: g)
        _ = try s.run(["x": Tensor(shape: [2, 3], floats: [Float](repeating: 1, count: 6))])
        var st = s.executor.steps[0]
        st.kernel = .activation(.relu, count: 7)
        XCTAssertThrowsError(try s.executor.checkAccesses(st, shapes: s.executor.shapes, constant: { _ in nil })) { e in
            XCTAssertTrue("\(e)".contains("node 'n0'") && "\(e)".contains("read 7 elements"), "\(e)")
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
