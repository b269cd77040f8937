import ArgumentParser
import Foundation
import Wconv

/// `wconv inspect FILE`: what a model file holds, tensor by tensor.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Lists the tensors of a model file.",
        discussion: "The format is sniffed from the bytes. Shows dtype, shape and size of every tensor (above \(InspectReport.summaryThreshold) tensors: totals per module, unless --verbose or --stats), totals, metadata, what else the file holds, globals the pickle referenced and tied tensors.")

    @Argument(help: "Model file (.pth/.pt/.bin, .safetensors or its .index.json, .onnx, .h5/.keras).") var file: String
    @OptionGroup var stdout: JSONFlag
    @Flag(help: "Add min/max/mean/std and NaN/Inf counts per tensor (reads every byte).") var stats = false
    @OptionGroup var checkpoint: StateDictKeyOption
    @Flag(help: "One row per tensor even for large files (otherwise one row per module above \(InspectReport.summaryThreshold) tensors).") var verbose = false

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
