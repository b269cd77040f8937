import Foundation
import Wconv

/// What `wconv convert` does, apart from how its arguments were read: the command's flags as plain
/// values. `ConvertCommand` fills it from ArgumentParser; `init?(plainArguments:)` from the plain
/// `convert IN OUT` form alone.
struct ConvertJob {
    var input: String
    var output: String
    var to: String?
    var dtype: String?
    var rename: [String]
    var stripPrefix: String?
    var key: String?
    var maxShardSize: String?
    var json: Bool

    /// The plain form `convert IN OUT` (two names, no flag), recognised without ArgumentParser; nil
    /// for anything else, which then goes through the full parser and its messages. Why: the
    /// parser builds every argument set by reflection, and each first conformance lookup scans
    /// all of the static runtime's conformance records: it was a third of the `perf` samples of a
    /// convert of a missing file (10–12.7 ms, 5.1 without it), on the main thread before any byte
    /// is read (issue 9: convert ≤ 0.5× torch.load + save_file). A plain call whose output
    /// format cannot be told from its extension also goes to the full parser, for its usage line.
    init?(plainArguments args: [String]) {
        guard args.count == 3, args[0] == "convert",
              args[1...].allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && $0 != "help" }) else { return nil }
        self.init(input: args[1], output: args[2])
        guard (try? settings()) != nil else { return nil }
    }

    init(input: String, output: String, to: String? = nil, dtype: String? = nil, rename: [String] = [],
         stripPrefix: String? = nil, key: String? = nil, maxShardSize: String? = nil, json: Bool = false) {
        (self.input, self.output, self.to, self.dtype, self.rename) = (input, output, to, dtype, rename)
        (self.stripPrefix, self.key, self.maxShardSize, self.json) = (stripPrefix, key, maxShardSize, json)
    }

    /// What the flags ask for, checked before any file is read: the output format, the target
    /// dtype, the rename rules and the shard limit.
    func settings() throws -> (format: FileFormat, dtype: DType?, rules: [RenameRule], shardLimit: Int?) {
        let format: FileFormat
        if let to {
            guard let f = FileFormat(writeTarget: to) else {
                throw WconvError(.usage, "--to \(to): unknown format; use safetensors, pth, onnx or h5")
            }
            format = f
        } else if let f = FileFormat.forOutputPath(output) {
            format = f
        } else {
            throw WconvError(.usage, "cannot tell the output format from \"\(output)\"; give --to safetensors|pth|onnx|h5 or an extension")
        }
        let targetDType: DType?
        if let dtype {
            guard let d = DType(userSpelling: dtype), [.f32, .f16, .bf16].contains(d) else {
                throw WconvError(.usage, "--dtype \(dtype): use f32, f16 or bf16")
            }
            targetDType = d
        } else {
            targetDType = nil
        }
        let rules = try rename.map(RenameRule.init)
        let shardLimit = try maxShardSize.map { try SizeParsing.parse($0, option: "--max-shard-size") }
        if shardLimit != nil && format != .safetensors {
            throw WconvError(.usage, "--max-shard-size applies to safetensors output only")
        }
        if format == .onnx || format == .kerasH5, !rename.isEmpty || stripPrefix != nil || dtype != nil {
            throw WconvError(.usage, "--rename, --strip-prefix and --dtype change tensor names or types, which an exported graph must keep; convert to .safetensors first, then to \(format == .onnx ? "ONNX" : ".h5")")
        }
        return (format, targetDType, rules, shardLimit)
    }

    func run() throws {
        let (format, targetDType, rules, shardLimit) = try settings()
        if format == .onnx || format == .kerasH5 {
            try convertThroughGraph(format: format)
            return
        }

        var bundle = try ModelFile.load(path: input, key: key)
        var report: [(String, JSONValue)] = [("input", .string(input)), ("input_format", .string(bundle.format))]
        var lines: [String] = ["read \(input) (\(bundle.format)): \(bundle.tensors.count) tensors, \(Fmt.bytes(InspectReport.storedBytes(bundle)))"]

        // 1. Prefix stripping.
        if let stripPrefix {
            let prefix = stripPrefix == "auto" ? NameMapping.autoPrefix(Array(bundle.tensors.keys)) : stripPrefix
            if let prefix, !prefix.isEmpty {
                let rule = NameMapping.Rule(description: "strip prefix \"\(prefix)\"") { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
                let changed = try NameMapping.apply(rule, to: &bundle)
                lines.append("\(rule.description): \(changed) names changed")
                report.append(("strip_prefix", .object([("prefix", .string(prefix)), ("changed", .int(changed))])))
            } else {
                lines.append("strip prefix auto: no wrapper prefix common to all names, nothing stripped")
                report.append(("strip_prefix", .object([("prefix", .null), ("changed", .int(0))])))
            }
        }

        // 2. Rename rules, chained in order.
        var ruleReports: [JSONValue] = []
        for r in rules {
            let rule = NameMapping.Rule(description: "rename \(r.text)", transform: r.apply)
            let changed = try NameMapping.apply(rule, to: &bundle)
            lines.append("\(rule.description): \(changed) names changed")
            ruleReports.append(.object([("rule", .string(r.text)), ("changed", .int(changed))]))
        }
        if !rules.isEmpty { report.append(("renames", .array(ruleReports))) }

        // 3. dtype.
        if let targetDType {
            let (converted, perTensor) = DTypeNarrowing.convert(&bundle, to: targetDType)
            lines.append("dtype \(targetDType.rawValue): \(converted) floating-point tensors converted")
            for (name, r) in perTensor where !r.isLossless {
                lines.append("  \(name): \(r.overflowed) overflowed to ±inf, \(r.flushedToZero) flushed to zero")
            }
            let total = perTensor.reduce(into: ConversionReport()) { $0 += $1.1 }
            if !total.isLossless {
                lines.append("  total: \(total.overflowed) overflowed, \(total.flushedToZero) flushed to zero")
            } else if converted > 0 {
                lines.append("  no value overflowed or was flushed to zero (values rounded to nearest even)")
            }
            report.append(("dtype", .object([
                ("target", .string(targetDType.rawValue)), ("converted", .int(converted)),
                ("overflowed", .int(total.overflowed)), ("flushed_to_zero", .int(total.flushedToZero)),
                ("lossy_tensors", .array(perTensor.filter { !$0.1.isLossless }.map {
                    .object([("name", .string($0.0)), ("overflowed", .int($0.1.overflowed)), ("flushed_to_zero", .int($0.1.flushedToZero))])
                })),
            ])))
        }

        // Like huggingface_hub's save, create the output's directory when it is missing.
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: parent) {
            do {
                try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw WconvError(.runtime, "cannot create the output directory \(parent): \(error.localizedDescription)")
            }
        }
        let files = try ModelFile.write(bundle, to: output, format: format, options: ModelWriteOptions(maxShardSize: shardLimit))
        let tied = bundle.aliases.count + bundle.sharedStorageGroups().reduce(0) { $0 + $1.count - 1 }
        lines.append("wrote \(files.count == 1 ? files[0] : "\(files.count - 1) shards + \(files.last!)") (\(format.rawValue)): \(bundle.tensors.count) tensors" + (tied > 0 ? ", tied tensors stored once" : ""))
        report += [("output", .string(output)), ("output_format", .string(format.rawValue)),
                   ("files", .array(files.map { .string($0) })), ("tensors", .int(bundle.tensors.count))]
        if json { printJSON(.object(report)) } else { print(lines.joined(separator: "\n")) }
        for w in bundle.warnings { printErr("warning: \(w)") }
    }
}

extension ConvertJob {
    /// ONNX and Keras .h5 need the model's structure, not just its tensors: the input is imported
    /// into a graph (architecture recognised, or the file's own graph) and exported from it.
    /// Weights to weights, no graph needed: a Keras weights file whose layers are in model order
    /// (legacy `save_weights('x.h5')` / `model.save('x.h5')`) is rewritten layer by layer as legacy
    /// Keras .h5 weights. False when the input is not such a file. A Keras 3 `.weights.h5` keeps its
    /// layers by name, not in model order, and the legacy layout loads by order: refused with the reason.
    private func convertKerasWeights() throws -> Bool {
        guard [.kerasH5, .kerasZip].contains(try ModelFile.sniff(path: input)) else { return false }
        let keras = try KerasReader.readModel(path: input)
        switch keras.layout {
        case .legacyWeights, .legacyModel: break
        case .kerasWeights:
            throw WconvError(.invalidInput, "a Keras 3 .weights.h5 stores its layers by name, not in model order, and Keras loads legacy .h5 weights by order, so the .h5 would need the model's config: convert the model's .keras file instead, or convert this file to .safetensors/.pth (names and values kept)", file: input)
        default: return false
        }
        let layers = keras.layers.map { KerasWeightsWriter.Layer(name: $0.name, weights: $0.weights.map { ($0.name, $0.tensor) }) }
        try KerasWeightsWriter.write(layers: layers, to: output)
        let count = layers.reduce(0) { $0 + $1.weights.count }
        if json {
            printJSON(.object([("input", .string(input)), ("output", .string(output)), ("output_format", .string(FileFormat.kerasH5.rawValue)),
                               ("layers", .int(layers.count)), ("tensors", .int(count))]))
        } else {
            print("read \(input) (\(keras.layout.rawValue), weights only): \(layers.count) layers, \(count) tensors\nwrote \(output) (keras-h5 weights, layers in the file's model order)")
        }
        return true
    }

    private func convertThroughGraph(format: FileFormat) throws {
        let graph = try ModelIO.load(path: input, key: key, toolVersion: wconvVersion)
        if graph.isWeightsOnly && format == .kerasH5, try convertKerasWeights() { return }
        if graph.isWeightsOnly {
            throw WconvError(.invalidInput, "\(format == .onnx ? "ONNX" : "Keras .h5") export needs the model's graph, and no architecture was recognised in this file; run 'wconv import \(input)' to see why (or pass --arch to 'wconv import'), then convert the canonical file it writes", file: input)
        }
        try ModelIO.save(graph, to: output, format: format == .onnx ? .onnx : .h5)
        let line = "read \(input): \(graph.architecture ?? "graph") with \(graph.nodes.count) nodes, \(graph.parameters.count) tensors\nwrote \(output) (\(format.rawValue))"
        if json {
            printJSON(.object([("input", .string(input)), ("output", .string(output)), ("output_format", .string(format.rawValue)),
                               ("nodes", .int(graph.nodes.count)), ("tensors", .int(graph.parameters.count))]))
        } else {
            print(line)
        }
    }
}
