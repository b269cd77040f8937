// Placeholder declarations the training branch needs from the graph helper's branch, with
// throwing bodies. The lead deletes this file when merging the graph branch, whose
// `CanonicalModel` provides the real implementations with these signatures.
import WconvTensor

public enum CanonicalModel {
    /// Reads any supported model file (format sniffed from the bytes) into a ModelGraph.
    public static func load(path: String) throws -> ModelGraph {
        throw WconvError(.runtime, "model import is not available in this build (graph importer not merged)", file: path)
    }

    /// Writes a graph; the format follows the extension (.safetensors with wconv.* metadata, .pth, .onnx, .h5).
    public static func save(_ graph: ModelGraph, to path: String) throws {
        throw WconvError(.runtime, "model export is not available in this build (graph writer not merged)", file: path)
    }
}
