import ArgumentParser
import Foundation
import Wconv

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import",
        abstract: "Reads any supported file and writes the canonical model.",
        discussion: """
        Builds the model graph (recognised architecture for bare state dicts, the file's own graph for \
        ONNX/Keras, the stored graph for canonical files), prints a summary (architecture, layer groups \
        with their parameter counts, every unused or aliased tensor; --verbose: every tensor), and \
        writes the canonical safetensors model (default: beside FILE as NAME.wconv.safetensors). \
        A file whose structure is not recognised imports as weights only, with the reason.
        """)

    @Argument(help: "Model file (.pth, .pt, .bin, .safetensors, .onnx, .h5, …; the format is sniffed).") var file: String
    @Option(name: .shortAndLong, help: "Output path of the canonical model.") var output: String?
    @OptionGroup var family: ArchOption
    @OptionGroup var checkpoint: StateDictKeyOption
    @Option(name: .long, help: "config.json to use instead of the one beside FILE (HF models).") var config: String?
    @OptionGroup var stdout: JSONFlag
    @Flag(name: .long, help: "List every tensor and what became of it (the summary lists only unused and aliased ones).") var verbose = false

    func run() throws {
        var configJSON: JSONValue?
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else {
                throw WconvError(.usage, "cannot read --config file", file: config)
            }
            let obj = try data.withUnsafeBytes { try JSONValue.parse($0, what: "--config", file: config) }
            guard obj.object != nil else { throw WconvError(.invalidInput, "--config is \(obj.typeName), not a JSON object", file: config) }
            configJSON = obj
        }
        var result = try GraphImporter.importGraph(path: file, key: checkpoint.key, arch: family.arch, configJSON: configJSON, toolVersion: wconvVersion)
        let out = output ?? Self.defaultOutput(for: file)
        try CanonicalModel.save(result.graph, to: out)
        result.report.output = out
        if stdout.json {
            try printJSON(encoding: result.report)
        } else {
            print(result.report.render(verbose: verbose))
        }
    }

    /// `dir/NAME.ext` → `dir/NAME.wconv.safetensors`.
    static func defaultOutput(for path: String) -> String {
        let p = path as NSString
        var base = (p.lastPathComponent as NSString).deletingPathExtension
        if base.hasSuffix(".wconv") { base = String(base.dropLast(6)) }
        let dir = p.deletingLastPathComponent
        return dir.isEmpty ? base + ".wconv.safetensors" : (dir as NSString).appendingPathComponent(base + ".wconv.safetensors")
    }
}
