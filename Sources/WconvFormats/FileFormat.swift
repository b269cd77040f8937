import WconvTensor

/// The kinds of model file wconv recognises, decided from the bytes (never from the extension).
public enum FileFormat: String, CaseIterable, Sendable {
    /// A single `.safetensors` file.
    case safetensors
    /// A sharded safetensors checkpoint's `*.safetensors.index.json`.
    case safetensorsIndex = "safetensors-index"
    /// `torch.save` zip archive (default since PyTorch 1.6).
    case pytorchZip = "pytorch-zip"
    /// `torch.jit.save` archive: weights are read, code is never run.
    case torchscript
    /// Pre-1.6 `torch.save` (`_use_new_zipfile_serialization=False`).
    case pytorchLegacy = "pytorch-legacy"
    /// A bare pickle the PyTorch reader accepts, or a plain `pickle.dump` of tensors / numpy arrays.
    case pytorchPickle = "pytorch-pickle"
    /// A sharded `pytorch_model.bin.index.json`.
    case pytorchIndex = "pytorch-index"
    case onnx
    /// Keras HDF5 weights or model (`.h5`).
    case kerasH5 = "keras-h5"
    /// Keras 3 `.keras` zip (config.json + model.weights.h5).
    case kerasZip = "keras-zip"

    /// True for the PyTorch family the PyTorch reader handles.
    public var isPyTorch: Bool {
        switch self {
        case .pytorchZip, .torchscript, .pytorchLegacy, .pytorchPickle, .pytorchIndex: return true
        default: return false
        }
    }

    /// The format to write for a user spelling (`--to`) or a file extension.
    public init?(writeTarget s: String) {
        switch s.lowercased() {
        case "safetensors", "st": self = .safetensors
        case "pth", "pt", "bin", "torch", "pytorch": self = .pytorchZip
        case "onnx": self = .onnx
        case "h5", "hdf5", "keras": self = .kerasH5
        default: return nil
        }
    }

    /// The write format implied by an output path's extension, if any.
    public static func forOutputPath(_ path: String) -> FileFormat? {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        if base.hasSuffix(".index.json") { return .safetensors }
        guard let dot = base.lastIndex(of: ".") else { return nil }
        return FileFormat(writeTarget: String(base[base.index(after: dot)...]))
    }
}

/// Options for `ModelFile.write`.
public struct ModelWriteOptions {
    /// Split safetensors output into shards of at most this many bytes.
    public var maxShardSize: Int?
    public init(maxShardSize: Int? = nil) { self.maxShardSize = maxShardSize }
}
