/// Per-tensor statistics for `inspect --stats`, computed in one pass over the contiguous bytes.
public struct TensorStats: Sendable {
    public var min = Double.infinity
    public var max = -Double.infinity
    public var mean = 0.0
    public var std = 0.0
    public var nanCount = 0
    public var infCount = 0
    /// Finite values counted.
    public var finite = 0

    public init(_ t: Tensor) {
        var acc = Accumulator()
        let n = t.numel
        t.withContiguousBytes { raw in
            guard n > 0, let base = raw.baseAddress else { return }
            switch t.dtype {
            case .f32:
                let p = base.assumingMemoryBound(to: Float.self)
                for i in 0..<n { acc.add(Double(p[i])) }
            case .f64:
                let p = base.assumingMemoryBound(to: Double.self)
                for i in 0..<n { acc.add(p[i]) }
            case .f16:
                let p = base.assumingMemoryBound(to: UInt16.self)
                for i in 0..<n { acc.add(Double(Float(Float16(bitPattern: p[i])))) }
            case .bf16:
                let p = base.assumingMemoryBound(to: UInt16.self)
                for i in 0..<n { acc.add(Double(Float(bitPattern: UInt32(p[i]) << 16))) }
            default:
                for v in t.doubles() { acc.add(v) }
            }
        }
        min = acc.min; max = acc.max; nanCount = acc.nan; infCount = acc.inf; finite = acc.count
        if acc.count > 0 {
            mean = acc.sum / Double(acc.count)
            // Two-moment variance with a shift (first value) to keep cancellation small.
            let m = acc.shiftedSum / Double(acc.count)
            std = (Swift.max(0, acc.shiftedSumSq / Double(acc.count) - m * m)).squareRoot()
        }
        if acc.count == 0 { min = .nan; max = .nan; mean = .nan; std = .nan }
    }

    /// Sums over finite values; NaN and ±inf are counted, not summed.
    private struct Accumulator {
        var min = Double.infinity, max = -Double.infinity
        var sum = 0.0, shiftedSum = 0.0, shiftedSumSq = 0.0
        var shift = Double.nan
        var count = 0, nan = 0, inf = 0

        @inline(__always) mutating func add(_ v: Double) {
            if v.isNaN { nan += 1; return }
            if v.isInfinite { inf += 1; if v < min { min = v }; if v > max { max = v }; return }
            if count == 0 { shift = v }
            count += 1
            if v < min { min = v }
            if v > max { max = v }
            sum += v
            let d = v - shift
            shiftedSum += d
            shiftedSumSq += d * d
        }
    }
}
