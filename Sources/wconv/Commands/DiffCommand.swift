import ArgumentParser
import Foundation
import Wconv

/// `wconv diff A B`: tensor-by-tensor comparison across any two supported files. A is the reference:
/// names only in A are "missing" from B, names only in B are "unexpected". Exit 4 when they differ.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Compares two files tensor by tensor.",
        discussion: "Values match when |a - b| <= atol + rtol * |b| element-wise (NaN matches NaN). Exit status 0 when everything matches, 4 when anything differs.")

    @Argument(help: "Reference model file.")
    var a: String

    @Argument(help: "Model file compared against it.")
    var b: String

    @Option(help: "Absolute tolerance.")
    var atol: Double = 0

    @Option(help: "Relative tolerance.")
    var rtol: Double = 0

    @OptionGroup var checkpoint: StateDictKeyOption

    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("--atol and --rtol must be finite and non-negative")
        }
    }

    func run() throws {
        // --key applies to whichever of the two files is a PyTorch checkpoint.
        let ka = try ModelFile.sniff(path: a).isPyTorch ? checkpoint.key : nil
        let kb = try ModelFile.sniff(path: b).isPyTorch ? checkpoint.key : nil
        let ba = try ModelFile.load(path: a, key: ka)
        let bb = try ModelFile.load(path: b, key: kb)
        let result = TensorDiff.compare(ba, bb, atol: atol, rtol: rtol)
        if stdout.json {
            printJSON(result.json(a: a, b: b, atol: atol, rtol: rtol))
        } else {
            print(result.text(a: a, b: b))
        }
        if !result.equal {
            throw WconvError(.difference, "\(a) and \(b) differ: \(result.summary)")
        }
    }
}

/// The comparison of two bundles.
struct TensorDiff {
    struct Entry {
        var name: String
        var dtypeA: DType, dtypeB: DType
        var shapeA: [Int], shapeB: [Int]
        var maxAbs = 0.0
        var maxRel = 0.0
        /// Elements outside the tolerance.
        var mismatched = 0
        var bitExact = false
        var comparable: Bool { shapeA == shapeB }
        var matches: Bool { comparable && dtypeA == dtypeB && mismatched == 0 }
    }

    var missing: [String] = []
    var unexpected: [String] = []
    var entries: [Entry] = []

    var shapeMismatches: [Entry] { entries.filter { !$0.comparable } }
    var dtypeMismatches: [Entry] { entries.filter { $0.dtypeA != $0.dtypeB } }
    var valueMismatches: [Entry] { entries.filter { $0.comparable && $0.mismatched > 0 } }
    var equal: Bool { missing.isEmpty && unexpected.isEmpty && entries.allSatisfy(\.matches) }

    var summary: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing") }
        if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected") }
        if !shapeMismatches.isEmpty { parts.append("\(shapeMismatches.count) shape mismatches") }
        if !dtypeMismatches.isEmpty { parts.append("\(dtypeMismatches.count) dtype mismatches") }
        if !valueMismatches.isEmpty { parts.append("\(valueMismatches.count) tensors with different values") }
        return parts.isEmpty ? "identical" : parts.joined(separator: ", ")
    }

    static func compare(_ a: TensorBundle, _ b: TensorBundle, atol: Double, rtol: Double) -> TensorDiff {
        var d = TensorDiff()
        let bar = ProgressBar("diff", total: a.totalBytes)
        for (name, ta) in a.tensors {
            guard let tb = b.tensors[name] else { d.missing.append(name); continue }
            bar.advance(by: ta.byteCount)
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
        bar.finish()
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

    func text(a: String, b: String) -> String {
        var out = ["A: \(a)", "B: \(b)"]
        let bitExact = entries.filter(\.bitExact).count
        out.append("\(entries.count) tensors in both (\(bitExact) bit-exact), \(missing.count) only in A (missing), \(unexpected.count) only in B (unexpected)")
        for n in missing { out.append("  missing:    \(n)") }
        for n in unexpected { out.append("  unexpected: \(n)") }
        for e in entries where !e.comparable {
            out.append("  shape:      \(e.name) \(Fmt.shape(e.shapeA)) vs \(Fmt.shape(e.shapeB))")
        }
        for e in entries where e.dtypeA != e.dtypeB {
            out.append("  dtype:      \(e.name) \(e.dtypeA.rawValue) vs \(e.dtypeB.rawValue)")
        }
        let differing = entries.filter { $0.comparable && !$0.bitExact }
        if !differing.isEmpty {
            var t = TextTable(["name", "max abs", "max rel", "outside tol"], rightAligned: [1, 2, 3])
            for e in differing.sorted(by: { $0.maxAbs > $1.maxAbs || $0.maxAbs.isNaN }) {
                t.add([e.name, Fmt.g(e.maxAbs), Fmt.g(e.maxRel), Fmt.count(e.mismatched)])
            }
            out.append(t.render())
        }
        out.append(equal ? (bitExact == entries.count ? "result: identical (bit-exact)" : "result: equal within tolerance") : "result: DIFFERENT (\(summary))")
        return out.joined(separator: "\n")
    }

    func json(a: String, b: String, atol: Double, rtol: Double) -> JSONValue {
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
