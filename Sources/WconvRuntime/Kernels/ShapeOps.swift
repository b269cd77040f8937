import Foundation

/// Concat along `axis`: every input viewed as [outer, len_i·inner].
func concatForward(_ inputs: [UnsafePointer<Float>], lengths: [Int], outer: Int, inner: Int, _ y: UnsafeMutablePointer<Float>) {
    let total = lengths.reduce(0, +)
    var off = 0
    for (k, x) in inputs.enumerated() {
        let len = lengths[k] * inner
        let o = off
        Parallel.forRange(outer, costPerItem: len) { range in
            for r in range { (y + r * total * inner + o).update(from: x + r * len, count: len) }
        }
        off += len
    }
}

/// Adds each slice of dy back into its input's gradient (nil for inputs that need none).
func concatBackward(_ dy: UnsafePointer<Float>, lengths: [Int], outer: Int, inner: Int, dxs: [UnsafeMutablePointer<Float>?]) {
    let total = lengths.reduce(0, +)
    var off = 0
    for (k, dx) in dxs.enumerated() {
        let len = lengths[k] * inner
        if let dx {
            for r in 0..<outer {
                let s = dy + r * total * inner + off, d = dx + r * len
                for i in 0..<len { d[i] += s[i] }
            }
        }
        off += len
    }
}

/// General permutation: y = x.permute(perm), contiguous output.
func transposeForward(_ x: UnsafePointer<Float>, shape: [Int], perm: [Int], _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    let r = shape.count
    let inStrides = Tensor_contiguousStrides(shape)
    let outShape = perm.map { shape[$0] }
    let srcStrides = perm.map { inStrides[$0] }
    let count = shape.reduce(1, *)
    if count == 0 { return }
    // A scalar (rank 0) is its own transpose.
    guard r > 0 else { if accumulate { y[0] += x[0] } else { y[0] = x[0] }; return }
    let inner = outShape[r - 1], innerStride = srcStrides[r - 1]
    let rows = count / max(inner, 1)
    Parallel.forRange(rows, costPerItem: inner) { range in
        for row in range {
            var rem = row, off = 0
            var i = r - 2
            while i >= 0 { off += (rem % outShape[i]) * srcStrides[i]; rem /= outShape[i]; i -= 1 }
            let d = y + row * inner, s = x + off
            if accumulate { for j in 0..<inner { d[j] += s[j * innerStride] } }
            else { for j in 0..<inner { d[j] = s[j * innerStride] } }
        }
    }
}

func Tensor_contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { strides[i] = acc; acc *= max(shape[i], 1) }
    return strides
}

/// The inverse permutation (for transpose's backward).
func inversePermutation(_ perm: [Int]) -> [Int] {
    var inv = [Int](repeating: 0, count: perm.count)
    for (i, p) in perm.enumerated() { inv[p] = i }
    return inv
}

/// Gather along `axis` (ONNX Gather / embedding): data viewed as [outer, axisLen, inner].
func gatherForward(_ data: UnsafePointer<Float>, outer: Int, axisLen: Int, inner: Int, indices: [Int], _ y: UnsafeMutablePointer<Float>) {
    let k = indices.count
    for o in 0..<outer {
        for (j, idx) in indices.enumerated() {
            (y + (o * k + j) * inner).update(from: data + (o * axisLen + idx) * inner, count: inner)
        }
    }
}

/// `skipping`: an index whose row gets no gradient (PyTorch's Embedding padding_idx).
func gatherBackward(dy: UnsafePointer<Float>, outer: Int, axisLen: Int, inner: Int, indices: [Int], dData: UnsafeMutablePointer<Float>,
                    skipping: Int? = nil) {
    let k = indices.count
    for o in 0..<outer {
        for (j, idx) in indices.enumerated() where idx != skipping {
            let s = dy + (o * k + j) * inner, d = dData + (o * axisLen + idx) * inner
            for i in 0..<inner { d[i] += s[i] }
        }
    }
}

/// SplitMix64: a small seeded generator for dropout masks and probe inputs (reproducible per seed).
public struct SplitMix64 {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Standard normal (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

/// Inverted dropout: mask m ∈ {0, 1/(1−p)}; y = x·m. The mask is kept for backward.
func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count: Int, ratio: Float, rng: inout SplitMix64) {
    let keep = 1 / (1 - ratio)
    for i in 0..<count { mask[i] = rng.nextFloat() < ratio ? 0 : keep }
}
