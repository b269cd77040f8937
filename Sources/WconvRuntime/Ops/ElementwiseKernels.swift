import Foundation
import WconvGraph
import WconvTensor

/// Elementwise ops (docs/adding-an-op.md): binary with broadcasting (integer division truncates
/// when both inputs are integer), unary math, casts, where.
enum ElementwiseKernels {
    static let binaryKinds: [Op: BinaryKind] = [
        .add: .add, .sub: .sub, .mul: .mul, .div: .div, .pow: .pow, .minimum: .minimum, .maximum: .maximum,
        .equal: .equal, .less: .less, .lessOrEqual: .lessOrEqual, .greater: .greater, .greaterOrEqual: .greaterOrEqual,
        .and: .and, .or: .or,
    ]
    static let unaryKinds: [Op: UnaryKind] = [
        .erf: .erf, .sqrt: .sqrt, .exp: .exp, .log: .log, .abs: .abs, .neg: .neg, .reciprocal: .reciprocal, .not: .not, .isNaN: .isNaN,
    ]
    static let all: [OpKernels] = binaryKinds.map { op, kind in binary(op, kind) } + unaryKinds.map { op, kind in
        OpKernels(op) { r in Unary(kind: kind, count: r.outCount) }
    } + [cast, whereSelect]

    static func binary(_ op: Op, _ kind: BinaryKind) -> OpKernels {
        OpKernels(op) { r in
            let a = try r.shape(0), b = try r.shape(1)
            guard let p = BroadcastPlan(a, b) else { throw r.fail("shapes do not broadcast") }
            try r.agree(p.outShape)
            // x[N,C,H,W] · s[N,C,1,1] with x NHWC (DNNLLayoutPlan): the squeeze-excite scale.
            if op == .mul, r.layout.nhwcOutput, let full = DNNLLayoutPlan.isChannelScale([a, b], p.outShape) {
                return NHWCKernels.ChannelScale(n: p.outShape[0], c: p.outShape[1], hw: p.outShape[2] * p.outShape[3], full: full, activation: r.exec.fused,
                                                 bf16: r.layout.bf16Output)
            }
            // ONNX Div on integer tensors truncates toward zero.
            if op == .div, r.isInteger(0), r.isInteger(1), r.exec.fused == .none, let m = NBroadcast([a, b], out: p.outShape) {
                return IntegerDivide(map: m)
            }
            return Binary(kind: kind, plan: p)
        }
    }

    static let cast = OpKernels(.cast) { r in
        let to = DType(rawValue: r.node.string("to") ?? "f32") ?? .f32
        if to == .bool { return Unary(kind: .castBool, count: r.outCount) }
        if !to.isFloatingPoint { return Unary(kind: .castInt, count: r.outCount) }
        if to == .f16 || to == .bf16 { return RoundingCast(toHalf: to == .f16, count: r.outCount) }
        // Values are f32 in the runtime's buffers: other float casts keep them.
        return View()
    }

    static let whereSelect = OpKernels(.where) { r in
        let shapes = try (0..<3).map { try r.shape($0) }
        return Where(strides: shapes.map { broadcastStrides($0, to: r.outShape) }, outShape: r.outShape)
    }
}

/// The output is the input's buffer (reshape-like ops, float casts).
struct View: StepKernel {
    var isView: Bool { true }
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        // The output is the input's buffer seen with another shape: it cannot show more elements.
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        if let n = outputs.first { e.read(0, n) }
        return e
    }
    func forward(_ c: StepContext) throws {}
    func backward(_ c: BackwardContext) throws { _ = c.inputGradient(0) }
}

/// Broadcasting binary op with an optional fused activation (inference; ReLU after an add in training, TrainingFusion).
struct Binary: StepKernel {
    let kind: BinaryKind
    let plan: BroadcastPlan
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        StepExtents(inputs, outputs) {
            $0.read(0, stridedSpan(plan.dims, plan.sa)); $0.read(1, stridedSpan(plan.dims, plan.sb)); $0.write(0, plan.count)
        }
    }
    func forward(_ c: StepContext) throws {
        let y = c.output()
        binaryForward(kind, c.input(0)!, c.input(1)!, plan, y)
        let act = c.fused
        if act != .none { applyActivation(act, y, y, plan.count) }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = try c.outputGradientThroughReLU() else { return }
        // Operands of the output's size (no broadcast): each gets dy itself.
        if kind == .add, c.step.inputs.allSatisfy({ $0 >= 0 && c.executor.shapes[$0]?.reduce(1, *) == plan.count }) {
            c.passAddGradient(dy)
            return
        }
        binaryBackward(kind, c.input(0)!, c.input(1)!, plan, dy: dy, da: c.inputGradient(0), db: c.inputGradient(1))
    }
}

/// ONNX Div on integer tensors: truncates toward zero; division by zero is an error naming the node.
struct IntegerDivide: BroadcastKernel {
    let map: NBroadcast
    func forward(_ c: StepContext) throws {
        let a = c.input(0)!, b = c.input(1)!, y = c.output(), m = map
        let inner = m.inner, ia = m.innerStride(0), ib = m.innerStride(1)
        for row in 0..<m.rows {
            let pa = a + m.rowOffset(0, row), pb = b + m.rowOffset(1, row), py = y + row * inner
            for i in 0..<inner {
                let d = pb[i * ib]
                guard d != 0 else { throw c.fail("integer division by zero") }
                py[i] = Float((Double(pa[i * ia]) / Double(d)).rounded(.towardZero))
            }
        }
    }
}

struct Unary: PointwiseKernel {
    let kind: UnaryKind
    let count: Int
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) { unaryForward(kind, x, y, count) }
    func accumulateGradient(x: UnsafePointer<Float>, y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        unaryBackward(kind, x, y, dy: dy, dx: dx, count)
    }
}

/// Casts that round to f16 or bf16 (as onnxruntime's Cast does); the gradient passes straight
/// through, as PyTorch's .half()/.bfloat16() do.
struct RoundingCast: StepKernel {
    let toHalf: Bool
    let count: Int
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents { elementwise(count, inputs: inputs, outputs: outputs) }
    func forward(_ c: StepContext) throws {
        let x = c.input(0)!, y = c.output(), half = toHalf
        Parallel.forRange(count, costPerItem: 4) { r in
            if half { for i in r { y[i] = Float(Float16(x[i])) }; return }
            // Round to nearest even on the top 16 bits.
            for i in r {
                let v = x[i]
                if v.isNaN { y[i] = v; continue }
                let b = v.bitPattern
                y[i] = Float(bitPattern: (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000)
            }
        }
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient(), let d = c.inputGradient(0) else { return }
        for i in 0..<count { d[i] += dy[i] }
    }
}

struct Where: StepKernel {
    let strides: [[Int]]
    let outShape: [Int]
    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        for k in 0..<3 { e.read(k, strides[k].count == outShape.count ? stridedSpan(outShape, strides[k]) : Int.max) }
        e.write(0, outShape.reduce(1, *))
        return e
    }
    func forward(_ c: StepContext) throws {
        whereForward(c.input(0)!, c.input(1)!, c.input(2)!, strides: strides, outShape: outShape, c.output())
    }
    func backward(_ c: BackwardContext) throws {
        guard let dy = c.outputGradient() else { return }
        whereBackward(c.input(0)!, strides: strides, outShape: outShape, dy: dy, da: c.inputGradient(1), db: c.inputGradient(2))
    }
}
