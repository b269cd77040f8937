import OrderedCollections
import WconvTensor

/// Options for `PyTorchReader.read`.
public struct PyTorchReadOptions {
    /// Dotted path to the state dict inside a checkpoint (`--key model.ema`); nil finds it automatically.
    public var key: String?
    /// Verify the CRC-32 of every record, not only of records up to 64 KiB (costs a pass over the data).
    public var verifyAllChecksums: Bool = false
    public init(key: String? = nil) { self.key = key }
}

/// Reads every kind of file `torch.save` and friends produce, without executing anything:
///
/// | `TensorBundle.format` | file |
/// |---|---|
/// | `pytorch-zip` | zip format (torch ≥ 1.6): state dict or checkpoint dict |
/// | `pytorch-legacy` | pre-1.6 `_use_new_zipfile_serialization=False` format |
/// | `torchscript` | `torch.jit.save` archive (weights from `data.pkl`, code never run) |
/// | `pytorch-module` | `torch.save(model)` of a whole `nn.Module` (zip or legacy) |
/// | `pytorch-pickle` | plain `pickle.dump` of tensors or numpy arrays (detectron2 `.pkl`) |
/// | `pytorch-sharded` | Hugging Face `pytorch_model.bin.index.json` plus its shards |
///
/// Checkpoints keep format `pytorch-zip`/`pytorch-legacy`; the chosen key is in
/// `metadata["pytorch.state_dict_key"]` and everything else the file holds is summarised in `extras`.
public enum PyTorchReader {
    public static func read(path: String, options: PyTorchReadOptions = .init()) throws -> TensorBundle {
        let file = try MappedFile(path: path)
        if path.hasSuffix(".index.json") {
            return try readShards(index: file, options: options)
        }
        return try read(mapped: file, options: options)
    }

    /// A Hugging Face `pytorch_model.bin.index.json`: every shard read, merged and checked against the map.
    static func readShards(index: MappedFile, options: PyTorchReadOptions) throws -> TensorBundle {
        try ShardedCheckpoint.read(indexPath: index.path, file: index, format: "pytorch-sharded") {
            try read(mapped: $0, options: options)
        }
    }

    /// Reads one mapped file; errors name it. `zip` is its directory when the caller has walked it already.
    static func read(mapped file: MappedFile, zip: ZipArchive? = nil, options: PyTorchReadOptions) throws -> TensorBundle {
        do {
            return try read(file: file, zip: zip, options: options)
        } catch let e as WconvError {
            throw e.inFile(file.path)
        }
    }

    /// True when the bytes look like any PyTorch file (zip with data.pkl, legacy magic, TorchScript).
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Bool {
        switch FileKind.detect(head, fileSize: head.count) {
        case .legacyPickle: return true
        case .zip:
            // torch.save puts `<prefix>/data.pkl` first; TorchScript puts `<prefix>/data/0` (or data.pkl) first.
            guard head.count >= 30 else { return false }
            let n = Int(head.u16(26))
            guard head.count >= 30 + n else { return false }
            let name = String(decoding: head[30..<(30 + n)], as: UTF8.self)
            guard let slash = name.firstIndex(of: "/") else { return false }
            let rest = name[name.index(after: slash)...]
            return rest == "data.pkl" || rest.hasPrefix("data/") || rest == "constants.pkl" || rest == "version"
                || rest == "byteorder" || rest == ".format_version" || rest.hasPrefix("code/")
        default: return false
        }
    }

    static func read(file: MappedFile, zip: ZipArchive? = nil, options: PyTorchReadOptions) throws -> TensorBundle {
        let head = UnsafeRawBufferPointer(rebasing: file.buffer.prefix(4096))
        let kind = FileKind.detect(head, fileSize: file.size)
        switch kind {
        case .zip: return try readZip(file: file, zip: zip, options: options)
        case .legacyPickle: return try LegacyPyTorch.read(file: file, options: options)
        case .plainPickle: return try PlainPickle.read(file: file, options: options)
        case _ where kind.isRefusedEverywhere: throw kind.refusal(path: file.path, size: file.size, head: head)
        default: throw WconvError.invalid("not a PyTorch file: this is \(kind.description)", file: file.path)
        }
    }

    static func readZip(file: MappedFile, zip walked: ZipArchive? = nil, options: PyTorchReadOptions) throws -> TensorBundle {
        let zip = try walked ?? ZipArchive(file: file)
        guard let first = zip.entries.first else {
            throw WconvError.invalid("empty zip archive: no data.pkl, not a PyTorch file", file: file.path)
        }
        guard let slash = first.name.firstIndex(of: "/") else {
            throw WconvError.invalid("zip archive whose first member '\(first.name)' has no folder, so this is not a PyTorch file (torch keeps everything under '<name>/'; is this an .npz or another zip?)", file: file.path)
        }
        let prefix = String(first.name[...slash])
        guard let pkl = zip.entry(named: prefix + "data.pkl") else {
            let names = zip.entries.prefix(8).map(\.name).joined(separator: ", ")
            throw WconvError.invalid("zip archive without '\(prefix)data.pkl': not a PyTorch file (members: \(names))", file: file.path)
        }
        let isScript = zip.entry(named: prefix + "constants.pkl") != nil
        var byteSwap = false
        if let bo = zip.entry(named: prefix + "byteorder") {
            let record = try zip.data(of: bo)
            let text = withExtendedLifetime(record) { String(decoding: record.buffer, as: UTF8.self).trimmingSpaces }
            switch text {
            case "little": byteSwap = false
            case "big": byteSwap = true
            default: throw WconvError.invalid("byteorder record says '\(text.prefix(20))', expected 'little' or 'big'", file: file.path)
            }
        }
        if options.verifyAllChecksums {
            for e in zip.entries { try zip.verifyChecksum(of: e) }
        }
        let table = TorchStorageTable(path: file.path, byteSwap: byteSwap) { ps in
            let name = prefix + "data/" + ps.key
            guard let e = zip.entry(named: name) else {
                throw WconvError.invalid("storage '\(ps.key)' has no record '\(name)' in the archive; the file is incomplete", file: file.path)
            }
            let s = try zip.data(of: e)
            guard let want = ps.declaredBytes, want == s.byteCount else {
                throw WconvError.invalid("record '\(name)' holds \(s.byteCount) bytes but the pickle declares \(ps.declaredCount) × \(ps.elementSize) bytes (\(ps.dtypeName)); the file is corrupt", file: file.path)
            }
            return s
        }
        let pklData = try zip.data(of: pkl)
        let result = try withExtendedLifetime(pklData) {
            try PickleDecoder.decode(pklData.buffer, context: pkl.name, persistentLoad: table.persistentLoad)
        }
        var walker = TensorTreeWalker(path: file.path)
        if isScript { walker.scriptOrder = TorchScriptCode.declarations(zip: zip, prefix: prefix) }
        let found = try walker.extract(result.value, key: options.key)
        let format = isScript ? "torchscript" : (found.isModule ? "pytorch-module" : "pytorch-zip")
        var bundle = try assemble(found, table: table, format: format, pickle: result, path: file.path)
        if byteSwap { bundle.warnings.append("the file was written on a big-endian machine; values were byte-swapped") }
        if isScript { bundle.warnings.append("TorchScript archive: weights read from data.pkl; its code was not run") }
        return bundle
    }

    /// Builds the bundle: tensors materialised through the storage table, aliases for repeated tensors.
    static func assemble(_ found: TensorTreeWalker.Result, table: TorchStorageTable, format: String, pickle: PickleResult, path: String) throws -> TensorBundle {
        var bundle = TensorBundle(format: format)
        bundle.globalsSeen = pickle.globalsSeen
        bundle.stubbedGlobals = pickle.stubbedGlobals
        bundle.extras = found.extras
        bundle.warnings = found.warnings
        bundle.metadata = found.metadata
        bundle.tensors.reserveCapacity(found.tensors.count)
        // Same pickled tensor object, or an identical view of the same storage → alias of the first name.
        struct ViewKey: Hashable { var key: String; var offset: Int; var shape: [Int]; var strides: [Int]; var dtype: String }
        var firstName: [ViewKey: String] = [:]
        for (name, pt) in found.tensors {
            guard bundle.tensors[name] == nil else {
                throw WconvError.invalid("two tensors are named '\(name)'", file: path)
            }
            let t = try table.tensor(pt, name: name)
            let vk = ViewKey(key: pt.storage.key + (pt.storage.view.map { "#" + $0.key } ?? ""), offset: pt.offset, shape: pt.shape, strides: pt.strides, dtype: pt.dtypeName)
            if let holder = firstName[vk] { bundle.aliases[name] = holder } else { firstName[vk] = name }
            bundle.tensors[name] = t
        }
        if !pickle.stubbedGlobals.isEmpty {
            bundle.warnings.append("classes kept as inert stubs (never imported or run): " + pickle.stubbedGlobals.prefix(12).joined(separator: ", ") + (pickle.stubbedGlobals.count > 12 ? ", …" : ""))
        }
        if bundle.tensors.isEmpty {
            bundle.warnings.append("no tensors found")
        }
        return bundle
    }
}
