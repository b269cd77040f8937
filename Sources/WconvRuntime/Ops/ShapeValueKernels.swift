import Foundation
import WconvGraph
import WconvTensor

/// Ops whose values follow from shapes and attributes (docs/adding-an-op.md). The folding pass
/// usually evaluates them at plan time; these kernels run the cases too large to fold.
enum ShapeValueKernels {
    static let all: [OpKernels] = [shape, constantOfShape, range, arange]

    static let shape = OpKernels(.shape) { r in
        let x = try r.shape(0)
        let (a, b) = ShapeValueOps.shapeRange(r.node, rank: x.count)
        return Fill(values: .list(x[a..<b].map { Float($0) }))
    }
    static let constantOfShape = OpKernels(.constantOfShape) { r in
        Fill(values: .constant(Float(r.node.float("value") ?? 0), count: r.outCount))
    }
    static let range = OpKernels(.range) { r in
        guard let a = r.node.float("start"), let d = r.node.float("delta") else { throw r.fail("range needs start, limit and delta known before running") }
        return Fill(values: .ramp(start: a, step: d, count: r.outCount))
    }
    static let arange = OpKernels(.arange) { r in
        Fill(values: .ramp(start: Double(r.node.int("start") ?? 0), step: Double(r.node.int("step") ?? 1), count: r.outCount))
    }
}

/// Writes values that do not depend on the inputs' data; no gradient.
struct Fill: StepKernel {
    enum Values { case list([Float]), constant(Float, count: Int), ramp(start: Double, step: Double, count: Int) }
    let values: Values
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        switch values {
        case .list(let v): e.write(0, v.count)
        case .constant(_, let n), .ramp(_, _, let n): e.write(0, n)
        }
        return e
    }
    func forward(_ c: StepContext) throws {
        let y = c.output()
        switch values {
        case .list(let v): copyFloats(y, from: v)
        case .constant(let v, let n): fillFloats(y, with: v, count: n)
        case .ramp(let s, let d, let n): for i in 0..<n { y[i] = Float(s + Double(i) * d) }
        }
    }
}
