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

extension CheckpointFile {
    /// The tensors named `prefix` + a parameter name, as a full replacement for `model`'s
    /// parameters: each of the model's must be there, with its shape and finite values (the dtype
    /// may differ: sessions hand integer buffers back as f32); a name the model lacks means the
    /// checkpoint is of another model.
    static func parameters(_ tensors: OrderedDictionary<String, Tensor>, prefix: String, of model: OrderedDictionary<String, Tensor>,
                           path: String) throws -> OrderedDictionary<String, Tensor> {
        var out = model
        var seen = 0
        for (k, v) in tensors where k.hasPrefix(prefix) {
            let name = String(k.dropFirst(prefix.count))
            guard let old = model[name], old.shape == v.shape else {
                let have = model[name].map { "\($0.dtype) \($0.shape)" } ?? "no such tensor"
                throw WconvError(.invalidInput, "checkpoint tensor '\(k)' (\(v.dtype) \(v.shape)) does not match the model (\(have)): the checkpoint is of another model", file: path)
            }
            if v.dtype.isFloatingPoint, !v.floats().allSatisfy(\.isFinite) {
                throw WconvError(.invalidInput, "checkpoint tensor '\(k)' holds NaN or infinite values: the file is corrupt", file: path)
            }
            out[name] = v
            seen += 1
        }
        guard seen == model.count else {
            let missing = model.keys.filter { tensors[prefix + $0] == nil }
            throw WconvError(.invalidInput, "the checkpoint lacks \(missing.count) of the model's tensors (\(missing.prefix(3).map { prefix + $0 }.joined(separator: ", "))…): it is of another model", file: path)
        }
        return out
    }
}
