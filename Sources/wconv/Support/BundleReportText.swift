import Foundation
import Wconv

// The CLI's side of the library's bundle reports: progress bars on stderr and the text layout.

extension TensorDiff {
    /// `compare` with a progress bar for large files.
    static func compare(_ a: TensorBundle, _ b: TensorBundle, atol: Double, rtol: Double) -> TensorDiff {
        let bar = ProgressBar("diff", total: a.totalBytes)
        defer { bar.finish() }
        return compare(a, b, atol: atol, rtol: rtol, progress: bar.advance)
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
}

extension DTypeNarrowing {
    /// `convert` with a progress bar for large files.
    static func convert(_ bundle: inout TensorBundle, to target: DType) -> (Int, [(String, ConversionReport)]) {
        let bar = ProgressBar("convert", total: bundle.totalBytes)
        defer { bar.finish() }
        return convert(&bundle, to: target, progress: bar.advance)
    }
}

extension InspectReport {
    /// One row per module, with a hint that --verbose lists every tensor.
    static func moduleTable(_ b: TensorBundle) -> String {
        var table = TextTable(["module", "tensors", "elements", "bytes", "dtypes"], rightAligned: [1, 2, 3])
        for r in moduleRows(b) {
            table.add([r.module, String(r.tensors), Fmt.count(r.elements), Fmt.count(r.bytes), r.dtypes.sorted().joined(separator: ",")])
        }
        return table.render() + "\n(\(b.tensors.count) tensors; --verbose lists every one)"
    }

    static func text(file: String, format: FileFormat, bundle b: TensorBundle, stats: [String: TensorStats]?, verbose: Bool = false) -> String {
        var out: [String] = []
        out.append("\(file): \(format.rawValue)")
        if !verbose, stats == nil, b.tensors.count > summaryThreshold {
            out.append(moduleTable(b))
            out += footer(b, stats: nil)
            return out.joined(separator: "\n")
        }
        var headers = ["name", "dtype", "shape", "bytes"]
        var right: Set<Int> = [3]
        if stats != nil {
            headers += ["min", "max", "mean", "std", "nan", "inf"]
            right.formUnion(4...9)
        }
        var table = TextTable(headers, rightAligned: right)
        for (name, t) in b.tensors {
            var row = [name, t.dtype.rawValue, Fmt.shape(t.shape), Fmt.count(t.byteCount)]
            if let target = b.aliases[name] {
                row[3] = "→ \(target)"
            } else if let s = stats?[name] {
                row += [Fmt.g(s.min), Fmt.g(s.max), Fmt.g(s.mean), Fmt.g(s.std), String(s.nanCount), String(s.infCount)]
            }
            table.add(row)
        }
        out.append(table.render())
        out += footer(b, stats: stats)
        return out.joined(separator: "\n")
    }

    /// Totals, ties, metadata, extras, globals and warnings (after the tensor table).
    static func footer(_ b: TensorBundle, stats: [String: TensorStats]?) -> [String] {
        var out: [String] = []
        let stored = b.tensors.filter { b.aliases[$0.key] == nil }
        out.append("")
        out.append("total: \(Fmt.count(b.tensors.count)) tensors (\(stored.count) stored), \(Fmt.count(stored.values.reduce(0) { $0 + $1.numel })) elements, \(Fmt.bytes(storedBytes(b)))")
        out.append("dtypes: " + dtypeBreakdown(b).map { "\($0.0.rawValue) \($0.1) tensors / \(Fmt.count($0.2)) elements" }.joined(separator: "; "))
        if let stats {
            let nan = stats.values.reduce(0) { $0 + $1.nanCount }, inf = stats.values.reduce(0) { $0 + $1.infCount }
            let bad = stats.filter { $0.value.nanCount + $0.value.infCount > 0 }.map(\.key).sorted()
            out.append("non-finite: \(nan) NaN, \(inf) Inf" + (bad.isEmpty ? "" : " in " + bad.prefix(10).joined(separator: ", ") + (bad.count > 10 ? ", …" : "")))
        }
        let tied = tiedGroups(b)
        if !tied.isEmpty {
            out.append("tied tensors (one storage each):")
            for g in tied { out.append("  " + g.joined(separator: " = ")) }
        }
        if !b.metadata.isEmpty {
            out.append("metadata:")
            for k in b.metadata.keys.sorted() {
                let v = b.metadata[k]!
                out.append("  \(k): \(v.count > 200 ? String(v.prefix(200)) + "… (\(v.count) chars)" : v)")
            }
        }
        if !b.extras.isEmpty {
            out.append("also in the file:")
            for (k, v) in b.extras { out.append("  \(k): \(v)") }
        }
        if !b.globalsSeen.isEmpty {
            out.append("globals seen: " + b.globalsSeen.joined(separator: ", "))
        }
        if !b.stubbedGlobals.isEmpty {
            out.append("stubbed (inert, never called): " + b.stubbedGlobals.joined(separator: ", "))
        }
        for w in b.warnings { out.append("warning: \(w)") }
        return out
    }
}
