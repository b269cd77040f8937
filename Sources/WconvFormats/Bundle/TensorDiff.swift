import Foundation
import WconvTensor

/// The tensor-by-tensor comparison of two bundles (`wconv diff`). A is the reference: names only in
/// A are "missing" from B, names only in B are "unexpected". Values match when
/// |a − b| ≤ atol + rtol·|b| element-wise, NaN matching NaN.
public struct TensorDiff: Sendable {
    /// One tensor present in both bundles.
    public struct Entry: Sendable {
        public var name: String
        public var dtypeA: DType, dtypeB: DType
        public var shapeA: [Int], shapeB: [Int]
        public var maxAbs = 0.0
        public var maxRel = 0.0
        /// Elements outside the tolerance.
        public var mismatched = 0
        public var bitExact = false
        public var comparable: Bool { shapeA == shapeB }
        public var matches: Bool { comparable && dtypeA == dtypeB && mismatched == 0 }
    }

    public var missing: [String] = []
    public var unexpected: [String] = []
    public var entries: [Entry] = []

    public var shapeMismatches: [Entry] { entries.filter { !$0.comparable } }
    public var dtypeMismatches: [Entry] { entries.filter { $0.dtypeA != $0.dtypeB } }
    public var valueMismatches: [Entry] { entries.filter { $0.comparable && $0.mismatched > 0 } }
    public var equal: Bool { missing.isEmpty && unexpected.isEmpty && entries.allSatisfy(\.matches) }

    /// "2 missing, 1 shape mismatches, …", or "identical".
    public var summary: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing") }
        if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected") }
        if !shapeMismatches.isEmpty { parts.append("\(shapeMismatches.count) shape mismatches") }
        if !dtypeMismatches.isEmpty { parts.append("\(dtypeMismatches.count) dtype mismatches") }
        if !valueMismatches.isEmpty { parts.append("\(valueMismatches.count) tensors with different values") }
        return parts.isEmpty ? "identical" : parts.joined(separator: ", ")
    }

    /// Compares `a` with `b`; `progress` is told the bytes of each tensor of A as it is compared.
    public static func compare(_ a: TensorBundle, _ b: TensorBundle, atol: Double, rtol: Double,
                               progress: (Int) -> Void) -> TensorDiff {
        var d = TensorDiff()
        for (name, ta) in a.tensors {
            guard let tb = b.tensors[name] else { d.missing.append(name); continue }
            progress(ta.byteCount)
            var e = Entry(name: name, dtypeA: ta.dtype, dtypeB: tb.dtype, shapeA: ta.shape, shapeB: tb.shape)
            if e.comparable {
                if ta.dtype == tb.dtype && bytesEqual(ta, tb) {
                    e.bitExact = true
                } else {
                    compareValues(ta, tb, atol: atol, rtol: rtol, into: &e)
                }
            }
            d.entries.append(e)
        }
        d.unexpected = b.tensors.keys.filter { a.tensors[$0] == nil }
        return d
    }

    /// memcmp of the C-order bytes (zero-copy for contiguous tensors).
    private static func bytesEqual(_ a: Tensor, _ b: Tensor) -> Bool {
        a.withContiguousBytes { x in
            b.withContiguousBytes { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
    }

    /// Element-wise over values as Double (exact for every dtype wconv reads except i64 beyond 2^53).
    private static func compareValues(_ ta: Tensor, _ tb: Tensor, atol: Double, rtol: Double, into e: inout Entry) {
        let va = ta.doubles(), vb = tb.doubles()
        var maxAbs = 0.0, maxRel = 0.0, bad = 0
        for i in 0..<va.count {
            let x = va[i], y = vb[i]
            if x.isNaN || y.isNaN {
                if !(x.isNaN && y.isNaN) { bad += 1; maxAbs = .nan; maxRel = .nan }
                continue
            }
            if x == y { continue }  // also equal infinities
            let diff = abs(x - y)
            if !maxAbs.isNaN && (diff > maxAbs || diff.isNaN) { maxAbs = diff.isNaN ? .infinity : diff }
            let rel = y != 0 ? diff / abs(y) : .infinity
            if !maxRel.isNaN && rel > maxRel { maxRel = rel }
            if !(diff <= atol + rtol * abs(y)) { bad += 1 }
        }
        e.maxAbs = maxAbs
        e.maxRel = maxRel
        e.mismatched = bad
    }

    /// The `--json` report (docs/cli-json.md).
    public func json(a: String, b: String, atol: Double, rtol: Double) -> JSONValue {
        .object([
            ("a", .string(a)), ("b", .string(b)), ("atol", .double(atol)), ("rtol", .double(rtol)),
            ("equal", .bool(equal)),
            ("bit_exact", .bool(equal && entries.allSatisfy(\.bitExact))),
            ("compared", .int(entries.count)),
            ("missing", .array(missing.map { .string($0) })),
            ("unexpected", .array(unexpected.map { .string($0) })),
            ("shape_mismatches", .array(shapeMismatches.map {
                .object([("name", .string($0.name)), ("a", .array($0.shapeA.map { .int($0) })), ("b", .array($0.shapeB.map { .int($0) }))])
            })),
            ("dtype_mismatches", .array(dtypeMismatches.map {
                .object([("name", .string($0.name)), ("a", .string($0.dtypeA.rawValue)), ("b", .string($0.dtypeB.rawValue))])
            })),
            ("tensors", .array(entries.filter(\.comparable).map {
                .object([("name", .string($0.name)), ("bit_exact", .bool($0.bitExact)), ("max_abs", .double($0.maxAbs)),
                         ("max_rel", .double($0.maxRel)), ("mismatched", .int($0.mismatched))])
            })),
        ])
    }
}
