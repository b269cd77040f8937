import WconvTensor

/// The pre-1.6 format (`_use_new_zipfile_serialization=False`): five pickles back to back (magic,
/// protocol version, sys_info, the object, the storage key list), then for each key an int64 element
/// count and the raw little-endian elements. Storages are read zero-copy where aligned.
enum LegacyPyTorch {
    static func read(file: MappedFile, options: PyTorchReadOptions) throws -> TensorBundle {
        let buf = file.buffer
        let magic = try PickleDecoder.decode(buf, context: "legacy magic number")
        guard case .bigInt(let m) = magic.value, m == [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19] else {
            throw WconvError.invalid("legacy PyTorch file: the first pickle is not the magic number", file: file.path)
        }
        let version = try PickleDecoder.decode(buf, offset: magic.endOffset, context: "legacy protocol version")
        guard version.value.asInt == 1001 else {
            throw WconvError.invalid("legacy PyTorch file with protocol version \(version.value.asInt.map(String.init) ?? version.value.kindName), expected 1001", file: file.path)
        }
        let sysInfo = try PickleDecoder.decode(buf, offset: version.endOffset, context: "legacy sys_info")
        var warnings: [String] = []
        if case .dict(let d) = sysInfo.value, d["little_endian"]?.asInt == 0 {
            // torch converts to little-endian when writing legacy files, so nothing to swap.
            warnings.append("legacy file written on a big-endian machine (its data section is little-endian)")
        }
        // Storage bytes are known only after the key list is read; resolve them lazily.
        var dataStart: [String: (offset: Int, bytes: Int)] = [:]
        let table = TorchStorageTable(path: file.path, byteSwap: false) { ps in
            guard let loc = dataStart[ps.key] else {
                throw WconvError.invalid("legacy file: storage '\(ps.key)' is not in the data section", file: file.path)
            }
            return Storage(mapped: file, offset: loc.offset, count: loc.bytes)
        }
        let main = try PickleDecoder.decode(buf, offset: sysInfo.endOffset, context: "legacy object pickle", persistentLoad: table.persistentLoad)
        let keysPickle = try PickleDecoder.decode(buf, offset: main.endOffset, context: "legacy storage key list")
        guard let keys = keysPickle.value.sequenceItems else {
            throw WconvError.invalid("legacy file: the storage key list is a \(keysPickle.value.kindName)", file: file.path)
        }
        let declared = table.declaredStorages
        var pos = keysPickle.endOffset
        for k in keys {
            guard let key = k.asString ?? k.asInt.map(String.init) else {
                throw WconvError.invalid("legacy file: a storage key is a \(k.kindName)", file: file.path)
            }
            guard let ps = declared[key] else {
                throw WconvError.invalid("legacy file: storage '\(key)' is listed but no tensor uses it, so its element size is unknown", file: file.path)
            }
            guard pos + 8 <= buf.count else {
                throw WconvError.invalid("legacy file truncated at byte \(pos): storage '\(key)' header missing", file: file.path)
            }
            let count = Int64(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: Int64.self))
            let (bytes, o) = Int(clamping: count).multipliedReportingOverflow(by: ps.elementSize)
            guard count >= 0, !o, bytes <= buf.count - pos - 8 else {
                throw WconvError.invalid("legacy file truncated: storage '\(key)' declares \(count) × \(ps.elementSize) bytes at byte \(pos + 8) but the file has \(buf.count) bytes", file: file.path)
            }
            guard count == Int64(ps.declaredCount) else {
                throw WconvError.invalid("legacy file: storage '\(key)' holds \(count) elements but the pickle declares \(ps.declaredCount)", file: file.path)
            }
            guard dataStart[key] == nil else { throw WconvError.invalid("legacy file: storage '\(key)' listed twice", file: file.path) }
            dataStart[key] = (pos + 8, bytes)
            pos += 8 + bytes
        }
        if pos != buf.count {
            warnings.append("legacy file has \(buf.count - pos) bytes after the last storage")
        }
        let found = try TensorTreeWalker(path: file.path).extract(main.value, key: options.key)
        var bundle = try PyTorchReader.assemble(found, table: table, format: found.isModule ? "pytorch-module" : "pytorch-legacy", pickle: main, path: file.path)
        bundle.warnings += warnings
        if found.isModule { bundle.metadata["pytorch.container"] = "legacy" }
        return bundle
    }
}
