import Foundation
import WconvRuntime
import WconvGraph
import WconvTensor

/// Feature caches shared between the trainers of one job, so the same frozen front is not run
/// over the same data twice: `wconv compare` trains feature extraction, fine-tuning (whose
/// guard-rail baseline is feature extraction again) and progressive unfreezing (whose first
/// phase trains the head alone) from one source, and each would otherwise compute identical
/// features (issue 9: "feature caches reused across the guard-rail baseline and the run").
///
/// A cache is reused only when everything that determines it is the same: the split's name and
/// size, the cut value, the eval preprocessing, and the front graph itself — its nodes and the
/// bytes of every parameter it reads (a fingerprint, so a re-initialised or already fine-tuned
/// front never matches).
public final class FeatureCacheStore {
    private var caches: [String: FeatureCache] = [:]
    private let lock = NSLock()

    public init() {}

    /// Number of caches held.
    public var count: Int { lock.withLock { caches.count } }

    /// The cache under `key`, or the one `build` makes (then kept). `reused` says which.
    func cache(key: String, build: () throws -> FeatureCache) throws -> (cache: FeatureCache, reused: Bool) {
        if let c = lock.withLock({ caches[key] }) { return (c, true) }
        let c = try build()
        lock.withLock { caches[key] = c }
        return (c, false)
    }

    /// The key of the features of `front` (cut at `cut`) over the split `name` of `count` samples.
    static func key(front: ModelGraph, cut: String, name: String, count: Int, preprocessing: Preprocessing, precision: Precision = .f32) -> String {
        var h = Fingerprint()
        for n in front.nodes {
            h.add(n.name); h.add(n.op.rawValue)
            for i in n.inputs { h.add(i) }
            for (k, v) in n.attributes.sorted(by: { $0.key < $1.key }) { h.add(k); h.add(String(describing: v)) }
        }
        for (k, t) in front.parameters.sorted(by: { $0.key < $1.key }) {
            h.add(k); h.add(t.shape.description)
            t.withContiguousBytes { h.add($0) }
        }
        // bf16 features differ from f32 ones; f32 keys are those written before precisions existed.
        let arithmetic = precision == .f32 ? "" : "|\(precision.rawValue)"
        return "\(name)|\(count)|\(cut)|\(String(describing: preprocessing))|\(String(h.value, radix: 16))\(arithmetic)"
    }
}

/// A 64-bit FNV-1a-style hash over 8-byte words: fast on weights of hundreds of MB (SHA-256 here
/// would cost ~1 s on ResNet-50), and collisions only matter by accident, not by attack — the
/// store is private to one process and its inputs are the job's own graphs.
struct Fingerprint {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    mutating func add(_ s: String) {
        var s = s
        s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        mix(0xff)  // separator, so ("ab", "c") and ("a", "bc") differ
    }

    mutating func add(_ raw: UnsafeRawBufferPointer) {
        let words = raw.count / 8
        var h = value
        for i in 0..<words { h = (h ^ raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* Self.prime }
        for i in (words * 8)..<raw.count { h = (h ^ UInt64(raw[i])) &* Self.prime }
        value = (h ^ UInt64(raw.count)) &* Self.prime
    }

    private mutating func mix(_ x: UInt64) { value = (value ^ x) &* Self.prime }
}
