import CWconvVector
import Foundation
import WconvGraph

/// Pointwise activations, applied standalone or fused into a conv / BN epilogue.
enum Activation: Equatable {
    case none, relu, relu6, silu, geluErf, geluTanh, hardSwish, sigmoid, tanh
    /// clip(α·x + β, 0, 1): PyTorch's hardsigmoid is α = 1/6, β = 0.5; Keras 2 / ONNX default α = 0.2.
    case hardSigmoid(Float, Float)
    case clip(Float, Float)
    case leakyRelu(Float)
    /// x · tanh(softplus(x)).
    case mish

    /// The activation an op denotes, or nil when the op is not a pointwise activation.
    static func from(_ node: GraphNode) -> Activation? {
        switch node.op {
        case .relu: return .relu
        case .relu6: return .relu6
        case .silu: return .silu
        case .gelu: return node.string("approximate") == "tanh" ? .geluTanh : .geluErf
        case .hardSwish: return .hardSwish
        case .hardSigmoid:
            return .hardSigmoid(Float(node.float("alpha") ?? 1.0 / 6.0), Float(node.float("beta") ?? 0.5))
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .leakyRelu: return .leakyRelu(Float(node.float("alpha") ?? 0.01))
        case .mish: return .mish
        case .clip:
            // Bounds still read from tensors at run time are not a fusable activation.
            guard node.inputs.dropFirst().allSatisfy(\.isEmpty) else { return nil }
            let lo = node.float("min").map { Float($0) } ?? -Float.infinity
            let hi = node.float("max").map { Float($0) } ?? Float.infinity
            return .clip(lo, hi)
        default: return nil
        }
    }

    /// Applies the activation to `n` values from `x` into `y` (may alias).
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .none:
            if UnsafePointer(y) != x { y.update(from: x, count: n) }
        case .relu:
            mapFloats(x, y, n) { max($0, 0) }
        case .relu6:
            mapFloats(x, y, n) { min(max($0, 0), 6) }
        case .clip(let lo, let hi):
            mapFloats(x, y, n) { min(max($0, lo), hi) }
        case .silu:
            siluForward(x, y, n)
        case .sigmoid:
            wconv_sigmoid(x, y, n)
        case .tanh:
            wconv_tanh(x, y, n)
        case .geluErf:
            // C (wconv_vector.h): erf as PyTorch's vectorised GELU computes it, 16 lanes on AVX-512.
            wconv_gelu(x, y, n)
        case .geluTanh:
            wconv_gelu_tanh(x, y, n)
        case .hardSwish:
            mapFloats(x, y, n) { $0 * min(max($0 + 3, 0), 6) / 6 }
        case .leakyRelu(let a):
            mapFloats(x, y, n) { $0 >= 0 ? $0 : a * $0 }
        case .mish:
            // softplus with torch's threshold (x > 20: softplus(x) = x) keeps exp from overflowing.
            for i in 0..<n { let v = x[i]; y[i] = v * tanhf(v > 20 ? v : log1pf(expf(v))) }
        case .hardSigmoid(let a, let b):
            if a == 1.0 / 6.0 && b == 0.5 {
                // PyTorch's exact formula: relu6(x + 3) / 6.
                mapFloats(x, y, n) { min(max($0 + 3, 0), 6) / 6 }
            } else {
                mapFloats(x, y, n) { min(max(a * $0 + b, 0), 1) }
            }
        }
    }

    /// dx = dy · f'(x), accumulated into `dx` (`dx += …`). `x` is the activation's input.
    func backward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .none:
            for i in 0..<n { dx[i] += dy[i] }
        case .relu:
            reluGradient(x, dy: dy, dx: dx, n, accumulate: true)
        case .relu6:
            for i in 0..<n where x[i] > 0 && x[i] < 6 { dx[i] += dy[i] }
        case .clip(let lo, let hi):
            for i in 0..<n where x[i] >= lo && x[i] <= hi { dx[i] += dy[i] }
        case .silu:
            siluGradient(x, dy: dy, dx: dx, n, accumulate: true)
        case .sigmoid:
            wconv_sigmoid_grad(x, dy, dx, n)
        case .tanh:
            wconv_tanh_grad(x, dy, dx, n)
        case .geluErf:
            wconv_gelu_grad(x, dy, dx, n)
        case .geluTanh:
            wconv_gelu_tanh_grad(x, dy, dx, n)
        case .hardSwish:
            // PyTorch: 0 below -3, 1 above 3, (2x+3)/6 between (the boundary points take the inner formula's neighbours as torch does).
            for i in 0..<n {
                let v = x[i]
                if v < -3 { continue }
                if v > 3 { dx[i] += dy[i] } else { dx[i] += dy[i] * (2 * v + 3) / 6 }
            }
        case .hardSigmoid(let a, let b):
            for i in 0..<n { let t = a * x[i] + b; if t > 0 && t < 1 { dx[i] += dy[i] * a } }
        case .leakyRelu(let a):
            for i in 0..<n { dx[i] += x[i] >= 0 ? dy[i] : a * dy[i] }
        case .mish:
            for i in 0..<n {
                let v = x[i]
                let sp = v > 20 ? v : log1pf(expf(v)), t = tanhf(sp), sig = 1 / (1 + expf(-v))
                dx[i] += dy[i] * (t + v * (1 - t * t) * sig)
            }
        }
    }

    /// Whether backward can be computed from the output alone (lets fused epilogues keep only y).
    var isReLUFamily: Bool {
        switch self { case .relu, .relu6, .none: return true; default: return false }
    }
}

/// y[i] = f(x[i]) for i < n, x and y the same buffer or disjoint. In place it loops over one pointer:
/// with two equal pointers the vectoriser's run-time overlap test fails and the scalar copy of the
/// loop runs (the in-place residual adds of a ResNet-18 training step: 18.2 ms that way, 11.2 after).
@inline(__always)
func mapFloats(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ f: (Float) -> Float) {
    if UnsafePointer(y) == x {
        for i in 0..<n { y[i] = f(y[i]) }
    } else {
        for i in 0..<n { y[i] = f(x[i]) }
    }
}

/// y[i] = f(a[i], b[i]) for i < n, y the same buffer as a or b, or disjoint from both: in place the
/// loop reads y for that operand (see mapFloats), keeping the operands' order.
@inline(__always)
func zipFloats(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
               _ f: (Float, Float) -> Float) {
    if UnsafePointer(y) == a {
        for i in 0..<n { y[i] = f(y[i], b[i]) }
    } else if UnsafePointer(y) == b {
        for i in 0..<n { y[i] = f(a[i], y[i]) }
    } else {
        for i in 0..<n { y[i] = f(a[i], b[i]) }
    }
}

/// Applies `act` over a buffer in parallel chunks.
func applyActivation(_ act: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    if act == .none && UnsafePointer(y) == x { return }
    Parallel.forRange(n, costPerItem: 4) { r in
        act.apply(x + r.lowerBound, y + r.lowerBound, r.count)
    }
}

/// ReLU's gradient dy · [v > 0] over n values, written into dx or (`accumulate`) added to it; `v` is
/// the ReLU's input or its output (same sign), `dx` may be `dy` (masking in place). dy is loaded
/// before the test: `v > 0 ? dy[i] : 0` compiles to a branch (a load only on one side), mispredicted
/// on about every other value (ResNet-50's ReLU backward took 13× its forward's time that way); as a
/// select the loop vectorises (6× faster).
func reluGradient(_ v: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, _ n: Int, accumulate: Bool) {
    if accumulate {
        for i in 0..<n { let g = dy[i], d = dx[i]; dx[i] = v[i] > 0 ? d + g : d }
    } else {
        for i in 0..<n { let g = dy[i]; dx[i] = v[i] > 0 ? g : 0 }
    }
}

/// y = x·σ(x) over n values (C: AVX-512 / AVX2 where the CPU has them, wconv_vector.h). x = −∞
/// gives NaN, as −∞ / (1 + e^∞) does.
func siluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    wconv_silu(x, y, n)
}

/// SiLU's gradient dy·σ(x)(1 + x(1 − σ(x))), written into dx or (`accumulate`) added to it.
func siluGradient(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, _ n: Int, accumulate: Bool) {
    wconv_silu_grad(x, dy, dx, n, accumulate ? 1 : 0)
}

func activationBackward(_ act: Activation, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, _ n: Int) {
    Parallel.forRange(n, costPerItem: 4) { r in
        act.backward(x: x + r.lowerBound, dy: dy + r.lowerBound, dx: dx + r.lowerBound, r.count)
    }
}
