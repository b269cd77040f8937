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
        func refuse(_ msg: String) -> WconvError { WconvError(.invalidInput, msg, file: path) }
        let size = buf.count
        if size == 0 {
            throw refuse("the file is empty (0 bytes); the download or copy did not finish")
        }
        let head = UnsafeRawBufferPointer(rebasing: buf[0..<min(size, 4096)])
        if FileSignature.startsWith(head, "version https://git-lfs") {
            throw refuse("this is a Git LFS pointer (\(size) bytes of text), not the model itself; run `git lfs pull` or download the file from its hosting page")
        }
        if FileSignature.looksLikeHTML(head) {
            throw refuse("this is an HTML page (\(size) bytes), probably an error or login page saved in place of the model; download the file again from its direct link")
        }
        if FileSignature.hdf5Offset(buf) != nil { return .kerasH5 }
        if FileSignature.startsWith(head, "PK\u{03}\u{04}") || FileSignature.startsWith(head, "PK\u{05}\u{06}") {
            return try sniffZip(buf, path: path)
        }
        if FileSignature.startsWith(head, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46]) { return .pytorchLegacy }
        if size >= 262, FileSignature.matches(buf, at: 257, "ustar") {
            throw refuse("this is a tar archive (PyTorch's pre-0.4 tar format, or a packed download); extract it, or load and re-save it with a current torch.save")
        }
        if SafetensorsReader.sniff(head, fileSize: size) { return .safetensors }
        if SafetensorsReader.looksLikeIndex(head) { return try sniffJSON(buf, path: path) }
        if FileSignature.looksLikeONNX(head) { return .onnx }
        if PyTorchReader.sniff(head) { return .pytorchPickle }
        // A plain pickle (protocol 2–5): read inertly; one reaching for code is refused naming the callable.
        if case .plainPickle = FileKind.detect(head) { return .pytorchPickle }
        if FileSignature.startsWith(head, [0x1f, 0x8b]) {
            throw refuse("this file is gzip-compressed; decompress it (gunzip) and pass the result")
        }
        if FileSignature.startsWith(head, [0x93]) && FileSignature.matches(buf, at: 1, "NUMPY") {
            throw refuse("this is a NumPy .npy array, not a model file; wconv reads PyTorch, safetensors, ONNX and Keras files")
        }
        let hex = head.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
        throw refuse("not a recognised model file (\(size) bytes, starting \(hex)); wconv reads PyTorch (.pth/.pt/.bin, TorchScript, legacy), safetensors (+ .index.json), ONNX and Keras (.h5/.keras). If the file is truncated, download it again")
    }

    private static func sniffZip(_ buf: UnsafeRawBufferPointer, path: String) throws -> FileFormat {
        guard let names = ZipDirectory.names(buf) else {
            throw WconvError(.invalidInput, "zip archive without a readable central directory (\(buf.count) bytes): the file is truncated or damaged; download it again", file: path)
        }
        func has(_ suffix: String) -> Bool { names.contains { $0 == suffix || $0.hasSuffix("/" + suffix) } }
        if has("data.pkl") {
            return has("constants.pkl") ? .torchscript : .pytorchZip
        }
        if names.contains("config.json") && names.contains("model.weights.h5") { return .kerasZip }
        if !names.isEmpty && names.allSatisfy({ $0.hasSuffix(".npy") }) {
            throw WconvError(.invalidInput, "this is a NumPy .npz archive of \(names.count) arrays, not a model file wconv reads", file: path)
        }
        let shown = names.prefix(5).joined(separator: ", ")
        throw WconvError(.invalidInput, "zip archive with no data.pkl (PyTorch) or config.json + model.weights.h5 (Keras); entries: \(shown.isEmpty ? "none" : shown)\(names.count > 5 ? ", …" : "")", file: path)
    }

    private static func sniffJSON(_ buf: UnsafeRawBufferPointer, path: String) throws -> FileFormat {
        guard buf.count <= 200_000_000 else {
            throw WconvError(.invalidInput, "a \(buf.count)-byte JSON file is too large to be a checkpoint index", file: path)
        }
        let index = try SafetensorsIndex.parse(buf, file: path)
        if index.weightMap.allSatisfy({ $0.shard.hasSuffix(".safetensors") }) { return .safetensorsIndex }
        return .pytorchIndex
    }

    /// Reads any supported file into a bundle. `key` selects the state dict inside a PyTorch
    /// checkpoint (dotted path); other formats refuse it.
    public static func load(path: String, key: String? = nil) throws -> TensorBundle {
        let format = try sniff(path: path)
        if key != nil && !format.isPyTorch {
            throw WconvError(.usage, "--key selects a state dict inside a PyTorch checkpoint; this file is \(format.rawValue)", file: path)
        }
        switch format {
        case .safetensors, .safetensorsIndex:
            return try SafetensorsReader.read(path: path)
        case .pytorchZip, .torchscript, .pytorchLegacy, .pytorchPickle:
            return try PyTorchReader.read(path: path, options: PyTorchReadOptions(key: key))
        case .pytorchIndex:
            return try loadPyTorchShards(indexPath: path, key: key)
        case .onnx:
            return try ONNXReader.read(path: path)
        case .kerasH5, .kerasZip:
            return try KerasReader.read(path: path)
        }
    }

    /// A `pytorch_model.bin.index.json`: every shard through the PyTorch reader, merged, with the
    /// same consistency checks as the safetensors index.
    private static func loadPyTorchShards(indexPath: String, key: String?) throws -> TensorBundle {
        let file = try MappedFile(path: indexPath)
        let index = try SafetensorsIndex.parse(file.buffer, file: indexPath)
        let dir: String
        if let slash = indexPath.lastIndex(of: "/") { dir = String(indexPath[...slash]) } else { dir = "" }
        var expected: [String: String] = [:]
        var order: [String] = []
        var seenShards = Set<String>()
        for (name, shard) in index.weightMap {
            guard !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
                throw WconvError(.unsafe, "weight_map[\"\(name)\"] names shard \"\(shard)\"; shards must be plain file names in the index's directory", file: indexPath)
            }
            expected[name] = shard
            if seenShards.insert(shard).inserted { order.append(shard) }
        }
        var bundle = TensorBundle(format: "pytorch-sharded")
        for shard in order {
            let part = try PyTorchReader.read(path: dir + shard, options: PyTorchReadOptions(key: key))
            for (name, t) in part.tensors {
                guard expected[name] == shard else {
                    throw WconvError(.invalidInput, "shard \"\(shard)\" holds tensor \"\(name)\" which the weight_map \(expected[name].map { "puts in \"\($0)\"" } ?? "does not list")", file: indexPath)
                }
                bundle.tensors[name] = t
            }
            for (k, v) in part.aliases { bundle.aliases[k] = v }
            for (k, v) in part.extras { bundle.extras["\(shard): \(k)"] = v }
            bundle.globalsSeen += part.globalsSeen.filter { !bundle.globalsSeen.contains($0) }
            bundle.stubbedGlobals += part.stubbedGlobals.filter { !bundle.stubbedGlobals.contains($0) }
            bundle.warnings += part.warnings
        }
        for (name, shard) in index.weightMap where bundle.tensors[name] == nil {
            throw WconvError(.invalidInput, "weight_map lists tensor \"\(name)\" in shard \"\(shard)\" but that shard does not hold it", file: indexPath)
        }
        return bundle
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
