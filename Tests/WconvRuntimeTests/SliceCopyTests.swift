import XCTest
@testable import WconvRuntime

/// `sliceCopy` against the definition, value by value: random shapes and slices with negative steps,
/// partial and whole trailing dims (the block-copy path), forward and the backward's accumulation.
final class SliceCopyTests: XCTestCase {
    func testSliceCopyMatchesTheDefinition() {
        var rng = TestRNG(61)
        for trial in 0..<300 {
            let r = 1 + trial % 4
            let inShape = (0..<r).map { _ in 1 + Int(rng.g.next() % 5) }
            var starts: [Int] = [], steps: [Int] = [], outShape: [Int] = []
            for d in 0..<r {
                let n = inShape[d]
                switch rng.g.next() % 4 {
                case 0: starts.append(0); steps.append(1); outShape.append(n)                 // whole
                case 1: let s = Int(rng.g.next() % UInt64(n)); starts.append(s); steps.append(1); outShape.append(n - s)
                case 2: starts.append(n - 1); steps.append(-1); outShape.append(n)          // reversed
                default: let s = Int(rng.g.next() % UInt64(n)); starts.append(s); steps.append(2); outShape.append((n - s + 1) / 2)
                }
            }
            let plan = SlicePlan(inShape: inShape, starts: starts, steps: steps, outShape: outShape)
            let inStrides = Tensor_contiguousStrides(inShape), outCount = outShape.reduce(1, *)
            var x = (0..<inShape.reduce(1, *)).map { Float($0) }
            var want = [Float](repeating: 0, count: outCount)
            for o in 0..<outCount {
                var rem = o, off = 0
                for d in stride(from: r - 1, through: 0, by: -1) {
                    off += (starts[d] + (rem % outShape[d]) * steps[d]) * inStrides[d]
                    rem /= outShape[d]
                }
                want[o] = x[off]
            }
            var y = [Float](repeating: -1, count: outCount)
            x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in sliceCopy(xp.baseAddress!, plan, yp.baseAddress!, backward: false) } }
            XCTAssertEqual(y, want, "\(plan)")
            // Backward: dx (zeros) += dy at the sliced positions: the sum of dx equals the sum of dy, each
            // sliced position gets exactly its value.
            var dx = [Float](repeating: 0, count: x.count), dy = want.map { $0 + 1000 }
            dx.withUnsafeMutableBufferPointer { xp in dy.withUnsafeMutableBufferPointer { yp in sliceCopy(xp.baseAddress!, plan, yp.baseAddress!, backward: true) } }
            for (o, v) in want.enumerated() { XCTAssertEqual(dx[Int(v)], dy[o], "\(plan) at \(o)") }
            XCTAssertEqual(dx.reduce(0, +), dy.reduce(0, +), "\(plan)")
        }
    }
}
