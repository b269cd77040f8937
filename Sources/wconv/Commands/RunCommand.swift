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
                inputs[name] = try imageBatch(images, preprocessing: graph.preprocessing ?? .imagenet)
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
        let tops = first.shape.count == 2 && top > 0 ? topK(first, k: min(top, first.shape[1]), labels: graph.labels, sigmoid: Trainer.isMultiLabelModel(graph)) : []
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

    /// Decodes images and applies the evaluation transform of the model's preprocessing
    /// (resize shorter side, center crop, mean/std) into one N×3×H×W batch.
    func imageBatch(_ paths: [String], preprocessing: Preprocessing) throws -> Tensor {
        let transform = ImageTransform(mode: .eval, preprocessing: preprocessing)
        let per = transform.sampleSize
        var values = [Float](repeating: 0, count: per * paths.count)
        var rng = RNG(seed: 0)
        for (i, p) in paths.enumerated() {
            let img = try ImageDecoder.decode(path: p)
            try values.withUnsafeMutableBufferPointer { buf in
                try transform.apply(img, rng: &rng, into: UnsafeMutableBufferPointer(rebasing: buf[(i * per)..<((i + 1) * per)]))
            }
        }
        return Tensor(shape: [paths.count, 3, transform.outputHeight, transform.outputWidth], floats: values)
    }

    struct TopEntry { var index: Int; var label: String?; var probability: Double; var logit: Double }

    /// Softmax probabilities (per-label sigmoids for a multi-label model) and the k largest logits of each row.
    func topK(_ t: Tensor, k: Int, labels: [String]?, sigmoid: Bool = false) -> [[TopEntry]] {
        let v = t.floats()
        let n = t.shape[0], c = t.shape[1]
        return (0..<n).map { r in
            let row = (0..<c).map { Double(v[r * c + $0]) }
            let mx = row.max() ?? 0
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            return row.indices.sorted { row[$0] > row[$1] }.prefix(k).map { i in
                TopEntry(index: i, label: labels.flatMap { i < $0.count ? $0[i] : nil },
                         probability: sigmoid ? 1 / (1 + exp(-row[i])) : exp(row[i] - mx) / sum, logit: row[i])
            }
        }
    }
}
