import ArgumentParser
import Foundation
import Wconv

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Runs a model on inputs.",
        discussion: "Inputs are .npy arrays (one --input per graph input, in order, or NAME=FILE), or PNG/JPEG images (comma-separated for a batch), which are decoded, resized, center-cropped and normalised as the model's preprocessing metadata says. Prints the output shape and, for classifier outputs, the top-k classes with probabilities and labels (per-label sigmoid probabilities for a multi-label model).")

    @Argument(help: "Model file (any supported format).")
    var model: String

    @Option(name: .long, help: "Input .npy file or image(s) a.png,b.jpg (repeat for several inputs; NAME=FILE addresses a graph input by name).")
    var input: [String] = []

    @Option(name: .shortAndLong, help: "Write the (first) output to this .npy file.")
    var output: String?

    @Option(name: .long, help: "Print the top-k classes of a [N, classes] output.")
    var top: Int = 5

    @OptionGroup var family: ArchOption

    @OptionGroup var cpu: ThreadsOption

    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard !input.isEmpty else { throw ValidationError("give at least one --input x.npy") }
        guard top >= 0 else { throw ValidationError("--top must be non-negative") }
    }

    func run() throws {
        let graph = try ModelIO.loadRunnable(path: model, arch: family.arch, toolVersion: wconvVersion)
        var inputs: [String: Tensor] = [:]
        for (k, spec) in input.enumerated() {
            var name: String, path: String
            if let eq = spec.firstIndex(of: "="), graph.inputs.contains(where: { $0.name == String(spec[..<eq]) }) {
                name = String(spec[..<eq]); path = String(spec[spec.index(after: eq)...])
            } else {
                guard k < graph.inputs.count else {
                    throw WconvError(.usage, "the model has \(graph.inputs.count) input(s) (\(graph.inputs.map(\.name).joined(separator: ", "))) but \(input.count) --input were given")
                }
                name = graph.inputs[k].name; path = spec
            }
            let images = path.split(separator: ",").map(String.init)
            if images.allSatisfy(isImagePath) {
                inputs[name] = try ImageTransform(mode: .eval, preprocessing: graph.preprocessing ?? .imagenet).batch(paths: images)
            } else {
                inputs[name] = try NPY.read(path: path)
            }
        }
        let session = try InferenceSession(graph: graph, threads: cpu.threads)
        let t0 = Date()
        let outputs = try session.run(inputs)
        let seconds = Date().timeIntervalSince(t0)
        let first = outputs[graph.outputs[0].name]!
        if let output { try NPY.write(first, to: output) }
        let tops = first.shape.count == 2 && top > 0 ? TopK.rows(first, k: min(top, first.shape[1]), labels: graph.labels, sigmoid: Trainer.isMultiLabelModel(graph)) : []
        if stdout.json {
            var doc: [(String, JSONValue)] = [
                ("model", .string(model)), ("seconds", .double(seconds)),
                ("outputs", .array(graph.outputs.map { .object([("name", .string($0.name)), ("shape", .array(outputs[$0.name]!.shape.map(JSONValue.int)))]) })),
            ]
            if let output { doc.append(("written", .string(output))) }
            if !tops.isEmpty {
                doc.append(("top", .array(tops.map { row in .array(row.map {
                    .object([("index", .int($0.index)), ("label", $0.label.map(JSONValue.string) ?? .null),
                             ("probability", .double($0.probability)), ("logit", .double($0.logit))])
                }) })))
            }
            printJSON(.object(doc))
            return
        }
        for o in graph.outputs { print("\(o.name): \(outputs[o.name]!.shape)") }
        for (i, row) in tops.enumerated() {
            print("sample \(i):")
            for e in row {
                let label = e.label.map { " \($0)" } ?? ""
                print(String(format: "  %5d%@  p=%.4f  logit=%.4f", e.index, label, e.probability, e.logit))
            }
        }
        if let output { print("wrote \(output)") }
        FileHandle.standardError.write(Data(String(format: "ran in %.3f s\n", seconds).utf8))
    }

    func isImagePath(_ p: String) -> Bool {
        let lower = p.lowercased()
        return [".png", ".jpg", ".jpeg"].contains { lower.hasSuffix($0) }
    }
}
