import ArgumentParser
import Foundation
import Wconv

/// `wconv inspect FILE`: what a model file holds, tensor by tensor.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Lists the tensors of a model file.",
        discussion: "The format is sniffed from the bytes. Shows dtype, shape and size of every tensor (above \(InspectReport.summaryThreshold) tensors: totals per module, unless --verbose or --stats), totals, metadata, what else the file holds, globals the pickle referenced and tied tensors.")

    @Argument(help: "Model file (.pth/.pt/.bin, .safetensors or its .index.json, .onnx, .h5/.keras).")
    var file: String

    @OptionGroup var stdout: JSONFlag

    @Flag(help: "Add min/max/mean/std and NaN/Inf counts per tensor (reads every byte).")
    var stats = false

    @OptionGroup var checkpoint: StateDictKeyOption

    @Flag(help: "One row per tensor even for large files (otherwise one row per module above \(InspectReport.summaryThreshold) tensors).")
    var verbose = false

    func run() throws {
        let format = try ModelFile.sniff(path: file)
        let bundle = try ModelFile.load(path: file, key: checkpoint.key)
        var perTensor: [String: TensorStats] = [:]
        if stats {
            let bar = ProgressBar("stats", total: bundle.totalBytes)
            for (name, t) in bundle.tensors where bundle.aliases[name] == nil {
                perTensor[name] = TensorStats(t)
                bar.advance(by: t.byteCount)
            }
            bar.finish()
        }
        let structure = try InspectStructure.section(file: file, format: format)
        if stdout.json {
            var doc = InspectReport.json(file: file, format: format, bundle: bundle, stats: stats ? perTensor : nil)
            if let structure, case .object(var items) = doc {
                items["structure"] = structure.json
                doc = .object(items)
            }
            printJSON(doc)
        } else {
            print(InspectReport.text(file: file, format: format, bundle: bundle, stats: stats ? perTensor : nil, verbose: verbose))
            if let structure { print(structure.lines.joined(separator: "\n")) }
        }
    }
}

/// Builds inspect's text and JSON output.
enum InspectReport {
    /// Bytes actually stored: tied tensors counted once.
    static func storedBytes(_ b: TensorBundle) -> Int {
        b.tensors.filter { b.aliases[$0.key] == nil }.reduce(0) { $0 + $1.value.byteCount }
    }

    static func dtypeBreakdown(_ b: TensorBundle) -> [(DType, Int, Int)] {
        var byType: [DType: (Int, Int)] = [:]
        for (name, t) in b.tensors where b.aliases[name] == nil {
            let v = byType[t.dtype] ?? (0, 0)
            byType[t.dtype] = (v.0 + 1, v.1 + t.numel)
        }
        return byType.sorted { $0.value.1 > $1.value.1 }.map { ($0.key, $0.value.0, $0.value.1) }
    }

    /// Tied groups: explicit aliases plus tensors sharing one storage.
    static func tiedGroups(_ b: TensorBundle) -> [[String]] {
        var groups = b.sharedStorageGroups()
        let covered = Set(groups.joined())
        var byTarget: [String: [String]] = [:]
        for (alias, target) in b.aliases where !covered.contains(alias) { byTarget[target, default: [target]].append(alias) }
        groups += byTarget.values.map { $0.sorted() }
        return groups.sorted { $0[0] < $1[0] }
    }

    /// Files with more tensors than this get one row per module unless `--verbose`.
    static let summaryThreshold = 40

    /// One row per module (name prefix), at the shallowest depth that splits the file into 2…40 rows.
    static func moduleTable(_ b: TensorBundle) -> String {
        func prefix(_ name: String, _ depth: Int) -> String {
            name.split(whereSeparator: { $0 == "." || $0 == "/" }).prefix(depth).joined(separator: ".")
        }
        let names = Array(b.tensors.keys)
        var depth = 1
        while depth < 4, Set(names.map { prefix($0, depth) }).count < 2 { depth += 1 }
        var rows: [(String, Int, Int, Int, Set<String>)] = []
        var index: [String: Int] = [:]
        for (name, t) in b.tensors {
            let p = prefix(name, depth)
            if index[p] == nil { index[p] = rows.count; rows.append((p, 0, 0, 0, [])) }
            let i = index[p]!
            rows[i].1 += 1
            if b.aliases[name] == nil { rows[i].2 += t.numel; rows[i].3 += t.byteCount }
            rows[i].4.insert(t.dtype.rawValue)
        }
        var table = TextTable(["module", "tensors", "elements", "bytes", "dtypes"], rightAligned: [1, 2, 3])
        for r in rows { table.add([r.0, String(r.1), Fmt.count(r.2), Fmt.count(r.3), r.4.sorted().joined(separator: ",")]) }
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

    static func json(file: String, format: FileFormat, bundle b: TensorBundle, stats: [String: TensorStats]?) -> JSONValue {
        let tensors: [JSONValue] = b.tensors.map { name, t in
            var m: [(String, JSONValue)] = [
                ("name", .string(name)), ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .int($0) })), ("bytes", .int(t.byteCount)),
            ]
            if let target = b.aliases[name] { m.append(("alias_of", .string(target))) }
            if let s = stats?[name] {
                m.append(("stats", .object([
                    ("min", .double(s.min)), ("max", .double(s.max)), ("mean", .double(s.mean)), ("std", .double(s.std)),
                    ("nan", .int(s.nanCount)), ("inf", .int(s.infCount)),
                ])))
            }
            return .object(m)
        }
        let stored = b.tensors.filter { b.aliases[$0.key] == nil }
        return .object([
            ("file", .string(file)),
            ("format", .string(format.rawValue)),
            ("reader_format", .string(b.format)),
            ("tensors", .array(tensors)),
            ("totals", .object([
                ("tensors", .int(b.tensors.count)), ("stored_tensors", .int(stored.count)),
                ("elements", .int(stored.values.reduce(0) { $0 + $1.numel })), ("bytes", .int(storedBytes(b))),
                ("dtypes", .object(dtypeBreakdown(b).map { ($0.0.rawValue, .object([("tensors", .int($0.1)), ("elements", .int($0.2))])) })),
            ])),
            ("metadata", .object(b.metadata.keys.sorted().map { ($0, .string(b.metadata[$0]!)) })),
            ("tied", .array(tiedGroups(b).map { .array($0.map { .string($0) }) })),
            ("extras", .object(b.extras.map { ($0.key, .string($0.value)) })),
            ("globals_seen", .array(b.globalsSeen.map { .string($0) })),
            ("stubbed_globals", .array(b.stubbedGlobals.map { .string($0) })),
            ("warnings", .array(b.warnings.map { .string($0) })),
        ])
    }
}
