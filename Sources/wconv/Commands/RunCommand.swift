import ArgumentParser
import Foundation
import Wconv

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Runs a model on inputs.",
        discussion: "Inputs are .npy arrays (one --input per graph input, in order, or NAME=FILE), or PNG/JPEG images (comma-separated for a batch), which are decoded, resized, center-cropped and normalised as the model's preprocessing metadata says; or, for a text model (a Hugging Face folder or its weights file with the tokenizer files beside it), --text strings, tokenized and padded as its tokenizer does. Prints the output shape and, for classifier outputs, the top-k classes with probabilities and labels (per-label sigmoid probabilities for a multi-label model). A text model gives its logits, else the last hidden state, or the pooled sentence embedding when the folder is a sentence-transformers one (modules.json, 1_Pooling); -o writes that result. Token ids given as .npy without attention_mask are taken as unpadded (mask all ones, token types 0), and the command says so.")

    @Argument(help: "Model file (any supported format).") var model: String
    @Option(name: .long, help: "Input .npy file or image(s) a.png,b.jpg (repeat for several inputs; NAME=FILE addresses a graph input by name).") var input: [String] = []
    @OptionGroup var texts: TextInputOptions
    @Option(name: .shortAndLong, help: "Write the (first) output, or a text model's result, to this .npy file.") var output: String?
    @Option(name: .long, help: "Print the top-k classes of a [N, classes] output.") var top: Int = 5
    @OptionGroup var family: ArchOption
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var arithmetic: PrecisionOption
    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard input.isEmpty != texts.text.isEmpty else { throw ValidationError("give --input x.npy (or images), or --text \"…\" for a text model, not both") }
        try texts.check()
        guard top >= 0 else { throw ValidationError("--top must be non-negative") }
    }

    func run() throws {
        _ = try arithmetic.checked()
        let ran = texts.text.isEmpty ? try runInputs() : try runTexts()
        let (outputs, names, seconds) = (ran.outputs, ran.names, ran.seconds)
        let first = outputs[names[0]]!
        if let output { try NPY.write(first, to: output) }
        let tops = first.shape.count == 2 && top > 0 && names[0] != "sentence_embedding"
            ? TopK.rows(first, k: min(top, first.shape[1]), labels: ran.graph.labels, sigmoid: Trainer.isMultiLabelModel(ran.graph)) : []
        if stdout.json {
            var doc: [(String, JSONValue)] = [
                ("model", .string(model)), ("seconds", .double(seconds)), ("precision", .string(arithmetic.precision.rawValue)),
                ("outputs", .array(names.map { .object([("name", .string($0)), ("shape", .array(outputs[$0]!.shape.map(JSONValue.int)))]) })),
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
        for name in names { print("\(name): \(outputs[name]!.shape)") }
        for (i, row) in tops.enumerated() {
            print("sample \(i):")
            for e in row {
                let label = e.label.map { " \($0)" } ?? ""
                print(String(format: "  %5d%@  p=%.4f  logit=%.4f", e.index, label, e.probability, e.logit))
            }
        }
        if let output { print("wrote \(output)") }
        FileHandle.standardError.write(Data(String(format: "ran in %.3f s (%@)\n", seconds, arithmetic.precision.rawValue).utf8))
    }

    /// A run's outputs, their names (the result to print and write first) and its time.
    struct Ran {
        var graph: ModelGraph
        var outputs: [String: Tensor]
        var names: [String]
        var seconds: Double
    }

    /// Runs .npy or image inputs.
    func runInputs() throws -> Ran {
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
        let (feeds, filled) = graph.unpaddedTextFeeds(inputs)
        if !filled.isEmpty {
            FileHandle.standardError.write(Data("no \(filled.joined(separator: " or ")) given: every row taken as unpadded (attention_mask 1, token_type_ids 0); pass --input attention_mask=FILE for padded rows\n".utf8))
        }
        let session = try InferenceSession(graph: graph, threads: cpu.threads, precision: arithmetic.precision)
        let t0 = Date()
        let outputs = try session.run(feeds)
        return Ran(graph: graph, outputs: outputs, names: graph.outputs.map(\.name), seconds: Date().timeIntervalSince(t0))
    }

    /// Tokenizes --text and runs the text model; the primary result comes first.
    func runTexts() throws -> Ran {
        let m = try TextModel(path: model, arch: family.arch, toolVersion: wconvVersion)
        let session = try InferenceSession(graph: m.graph, threads: cpu.threads, precision: arithmetic.precision)
        let t0 = Date()
        let r = try m.run(texts.text, pairs: texts.pairs, maxLength: texts.maxLength, session: session)
        let seconds = Date().timeIntervalSince(t0)
        if r.batch.truncatedCount > 0 {
            FileHandle.standardError.write(Data("\(r.batch.truncatedCount) of \(texts.text.count) text(s) truncated to \(r.batch.length) tokens\n".utf8))
        }
        return Ran(graph: m.graph, outputs: r.outputs, names: [r.primaryName] + m.graph.outputs.map(\.name).filter { $0 != r.primaryName }, seconds: seconds)
    }

    func isImagePath(_ p: String) -> Bool {
        let lower = p.lowercased()
        return [".png", ".jpg", ".jpeg"].contains { lower.hasSuffix($0) }
    }
}
