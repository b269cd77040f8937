import OrderedCollections
import WconvTensor

/// The one entry point for "any supported file": sniffs the format from the bytes (design.md §4)
/// and dispatches to the reader or writer.
public enum ModelFile {
    /// Decides what `path` holds from its bytes. Throws `.invalidInput` with a message that says what
    /// the file is instead (empty, Git-LFS pointer, HTML page, tar, random bytes, …) and what to do.
    public static func sniff(path: String) throws -> FileFormat {
        let file = try MappedFile(path: path)
        return try sniff(file.buffer, path: path)
    }

    /// Sniffs a file image already in memory.
    public static func sniff(_ buf: UnsafeRawBufferPointer, path: String) throws -> FileFormat {
        try sniffKeepingZip(buf, path: path, file: nil).format
    }

    /// The format, and for a zip the directory it walked, so `load` reads it once (issue 9: the two
    /// walks of ResNet-50's 320 members were 3 % of a convert's `perf` samples). `file`, when given,
    /// owns `buf`: the readers' zero-copy storages then keep the mapping alive.
    static func sniffKeepingZip(_ buf: UnsafeRawBufferPointer, path: String, file: MappedFile?) throws -> (format: FileFormat, zip: ZipArchive?) {
        let head = UnsafeRawBufferPointer(rebasing: buf[0..<min(buf.count, 4096)])
        let kind = FileKind.detect(head, fileSize: buf.count)
        switch kind {
        case .hdf5: return (.kerasH5, nil)
        case .zip: return try sniffZip(buf, path: path, file: file)
        case .legacyPickle: return (.pytorchLegacy, nil)
        case .safetensors: return (.safetensors, nil)
        case .json: return (try sniffJSON(buf, path: path), nil)
        case .onnx: return (.onnx, nil)
        // A plain pickle (protocol 2–5): read inertly; one reaching for code is refused naming the callable.
        case .plainPickle: return (.pytorchPickle, nil)
        default: throw kind.refusal(path: path, size: buf.count, head: head)
        }
    }

    private static func sniffZip(_ buf: UnsafeRawBufferPointer, path: String, file: MappedFile?) throws -> (format: FileFormat, zip: ZipArchive?) {
        let zip: ZipArchive
        do {
            zip = try file.map { try ZipArchive(file: $0) } ?? ZipArchive(buffer: buf, path: path)
        } catch let e as WconvError {
            throw WconvError(.invalidInput, "zip archive (\(buf.count) bytes) refused: \(e.message)", file: path)
        }
        let names = zip.entries.map(\.name)
        func has(_ suffix: String) -> Bool { names.contains { $0 == suffix || $0.hasSuffix("/" + suffix) } }
        if has("data.pkl") {
            return (has("constants.pkl") ? .torchscript : .pytorchZip, zip)
        }
        if names.contains("config.json") && names.contains("model.weights.h5") { return (.kerasZip, zip) }
        if !names.isEmpty && names.allSatisfy({ $0.hasSuffix(".npy") }) {
            throw WconvError(.invalidInput, "this is a NumPy .npz archive of \(names.count) arrays, not a model file wconv reads", file: path)
        }
        let shown = names.prefix(5).joined(separator: ", ")
        throw WconvError(.invalidInput, "zip archive with no data.pkl (PyTorch) or config.json + model.weights.h5 (Keras); entries: \(shown.isEmpty ? "none" : shown)\(names.count > 5 ? ", …" : "")", file: path)
    }

    private static func sniffJSON(_ buf: UnsafeRawBufferPointer, path: String) throws -> FileFormat {
        let index = try ShardedCheckpoint.parse(buf, file: path)
        if index.weightMap.allSatisfy({ $0.shard.hasSuffix(".safetensors") }) { return .safetensorsIndex }
        return .pytorchIndex
    }

    /// Reads any supported file into a bundle. `key` selects the state dict inside a PyTorch
    /// checkpoint (dotted path); other formats refuse it.
    public static func load(path: String, key: String? = nil) throws -> TensorBundle {
        let file = try MappedFile(path: path)
        let (format, zip) = try sniffKeepingZip(file.buffer, path: path, file: file)
        if key != nil && !format.isPyTorch {
            throw WconvError(.usage, "--key selects a state dict inside a PyTorch checkpoint; this file is \(format.rawValue)", file: path)
        }
        switch format {
        case .safetensors, .safetensorsIndex:
            return try SafetensorsReader.read(path: path)
        case .pytorchZip, .torchscript, .pytorchLegacy, .pytorchPickle:
            return try PyTorchReader.read(mapped: file, zip: zip, options: PyTorchReadOptions(key: key))
        case .pytorchIndex:
            return try PyTorchReader.readShards(index: file, options: PyTorchReadOptions(key: key))
        case .onnx:
            return try ONNXReader.read(path: path)
        case .kerasH5, .kerasZip:
            return try KerasReader.read(path: path)
        }
    }

    /// Writes `bundle` as `format`. Returns the files written (several when sharding).
    @discardableResult
    public static func write(_ bundle: TensorBundle, to path: String, format: FileFormat, options: ModelWriteOptions = .init()) throws -> [String] {
        switch format {
        case .safetensors, .safetensorsIndex:
            return try SafetensorsWriter.writeFiles(bundle, to: path, options: SafetensorsWriteOptions(maxShardSize: options.maxShardSize))
        case .pytorchZip:
            if options.maxShardSize != nil {
                throw WconvError(.usage, "sharding (--max-shard-size) is available for safetensors output only")
            }
            try PyTorchWriter.write(bundle, to: path)
            return [path]
        case .onnx, .kerasH5, .kerasZip:
            throw WconvError(.runtime, "writing \(format == .onnx ? "ONNX" : "Keras .h5") needs a graph, which the graph layer provides (`wconv import` → export); plain weights convert to safetensors or .pth", file: path)
        case .torchscript, .pytorchLegacy, .pytorchPickle, .pytorchIndex:
            throw WconvError(.usage, "wconv does not write \(format.rawValue); write .pth (the zip format torch.load reads) instead", file: path)
        }
    }
}
