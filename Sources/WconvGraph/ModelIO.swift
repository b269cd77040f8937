import WconvFormats
import WconvTensor

/// One entry point for "a model file in, a model file out", used by every command that takes or
/// writes a model: any supported file is imported through `GraphImporter` (canonical files restore
/// their graph), and the output format follows `format` or the extension.
public enum ModelIO {
    /// Reads any supported model file into a graph (a weights-only graph when no structure is found).
    /// `hashSource: false` leaves the file's SHA-256 out of the provenance, for callers that write no
    /// model from the graph (see `GraphImporter.importGraph(path:…)`).
    public static func load(path: String, key: String? = nil, arch: String? = nil, toolVersion: String? = nil,
                            hashSource: Bool = true) throws -> ModelGraph {
        try GraphImporter.importGraph(path: path, key: key, arch: arch, toolVersion: toolVersion, hashSource: hashSource).graph
    }

    /// Reads a model file as a graph that can run (`run`, `verify`, `bench run`): canonical files
    /// restore their graph, state dicts go through architecture recognition (`arch` forces a
    /// family). A file with weights but no graph is refused with the recogniser's reason. Running
    /// writes no model, so the source file is not hashed.
    public static func loadRunnable(path: String, arch: String? = nil, toolVersion: String? = nil) throws -> ModelGraph {
        let graph = try load(path: path, arch: arch, toolVersion: toolVersion, hashSource: false)
        if graph.isWeightsOnly {
            let why = graph.provenance.notes["weightsOnlyReason"].map { ": \($0)" } ?? ""
            throw WconvError(.invalidInput, "has weights but no graph, so it cannot run\(why). Try `wconv import --arch NAME` to force a family", file: path)
        }
        return graph
    }

    /// Output formats a graph can be written to.
    public enum Format: String, CaseIterable, Sendable {
        case safetensors, pth, onnx, h5

        /// The format for a path's extension, nil when it names none.
        public init?(path: String) {
            let lower = path.lowercased()
            if lower.hasSuffix(".safetensors") { self = .safetensors }
            else if lower.hasSuffix(".pth") || lower.hasSuffix(".pt") || lower.hasSuffix(".bin") { self = .pth }
            else if lower.hasSuffix(".onnx") { self = .onnx }
            else if lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") { self = .h5 }
            else { return nil }
        }
    }

    /// Writes `graph` to `path` (atomically, as every writer does). `.safetensors` is the canonical
    /// file with the whole graph in its metadata; `.pth` a state dict `load_state_dict` takes;
    /// `.onnx` a runnable ONNX model; `.h5` Keras weights.
    public static func save(_ graph: ModelGraph, to path: String, format: Format? = nil) throws {
        guard let fmt = format ?? Format(path: path) else {
            throw WconvError(.usage, "cannot tell the output format from the name '\(path)': use .safetensors, .pth, .onnx or .h5 (or --to)")
        }
        switch fmt {
        case .safetensors:
            try CanonicalModel.save(graph, to: path)
        case .pth:
            var bundle = TensorBundle(format: "pytorch-zip")
            for (name, t) in graph.parameters { bundle.tensors[name] = t }
            bundle.aliases = graph.aliases
            try PyTorchWriter.write(bundle, to: path)
        case .onnx:
            try exportONNX(graph, to: path)
        case .h5:
            try exportKeras(graph, to: path)
        }
    }
}
