/// The one random generator of the trainer: PCG32 (O'Neill's PCG-XSH-RR, 64-bit state, 32-bit
/// output), seeded through SplitMix64. Its whole state is two UInt64s, so checkpoints store it and
/// `--resume` continues the exact stream. Work that may run on any thread (augmentations, shuffles
/// per epoch) never shares a generator: it derives its own with `RNG(seed:stream:)` from the run seed
/// and a key (epoch, sample index), so results do not depend on thread timing.
public struct RNG: Codable, Equatable, Sendable {
    public private(set) var state: UInt64
    public private(set) var inc: UInt64

    /// SplitMix64 step, used to spread a user seed over the state.
    @inline(__always) static func splitmix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for `seed`; different `stream`s give independent sequences.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        let s0 = RNG.splitmix(&sm)
        let s1 = RNG.splitmix(&sm)
        state = 0
        inc = (s1 << 1) | 1
        _ = next32()
        state &+= s0
        _ = next32()
    }

    /// A generator keyed by (seed, a, b): e.g. (run seed, epoch, sample index).
    public init(seed: UInt64, keys a: UInt64, _ b: UInt64) {
        var sm = seed
        let k = RNG.splitmix(&sm) ^ (a &* 0x9E37_79B9_7F4A_7C15) ^ (b &* 0xC2B2_AE3D_27D4_EB4F)
        self.init(seed: k, stream: a ^ (b << 32) ^ (b >> 32))
    }

    @inline(__always) public mutating func next32() -> UInt32 {
        let old = state
        state = old &* 6_364_136_223_846_793_005 &+ inc
        let xorshifted = UInt32(truncatingIfNeeded: ((old >> 18) ^ old) >> 27)
        let rot = UInt32(truncatingIfNeeded: old >> 59)
        return (xorshifted >> rot) | (xorshifted << ((~rot &+ 1) & 31))
    }

    public mutating func next64() -> UInt64 { (UInt64(next32()) << 32) | UInt64(next32()) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next64() >> 11) * 0x1.0p-53 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }

    /// Uniform integer in 0..<n (Lemire's unbiased method); n > 0.
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0, "RNG.below needs n > 0")
        let bound = UInt64(n)
        var m = next64().multipliedFullWidth(by: bound)
        if m.low < bound {
            let t = (0 &- bound) % bound
            while m.low < t { m = next64().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Standard normal (Box–Muller; one value per call, deterministic).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 0x1.0p-60), u2 = uniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Fisher–Yates shuffle.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = below(i + 1)
            if i != j { a.swapAt(i, j) }
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
