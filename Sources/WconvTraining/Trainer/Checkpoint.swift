import OrderedCollections
import WconvFormats
import WconvTensor

/// Training checkpoints are plain safetensors files (model, optimizer state and the JSON training
/// state in `__metadata__`), written atomically by the shared safetensors writer so a killed run
/// never leaves a half-written checkpoint.
public enum CheckpointFile {
    public static func write(_ tensors: OrderedDictionary<String, Tensor>, metadata: [String: String], to path: String) throws {
        var bundle = TensorBundle(format: "safetensors", tensors: tensors)
        bundle.metadata = metadata
        try SafetensorsWriter.write(bundle, to: path)
    }

    public static func read(path: String) throws -> (tensors: OrderedDictionary<String, Tensor>, metadata: [String: String]) {
        let bundle = try SafetensorsReader.read(path: path)
        return (bundle.tensors, bundle.metadata)
    }
}
