import OrderedCollections
import WconvTensor

/// Reads safetensors files and sharded `*.safetensors.index.json` checkpoints.
///
/// The file is memory-mapped and every tensor is a zero-copy `Storage` view into the mapping; the
/// only work done at load time is parsing and validating the JSON header. Validation matches the
/// reference implementation (formats doc §5.2) and also refuses duplicate tensor names.
public enum SafetensorsReader {
    /// Reads a `.safetensors` file, or a sharded checkpoint through its `.index.json`.
    public static func read(path: String) throws -> TensorBundle {
        let file = try MappedFile(path: path)
        // A binary header whose length's low byte happens to be `{` must not pass for an index.
        if !sniff(file.buffer, fileSize: file.size) && looksLikeIndex(file.buffer) {
            return try ShardedCheckpoint.read(indexPath: path, file: file, format: "safetensors-sharded", readShard: read(mapped:))
        }
        return try read(mapped: file)
    }

    /// True when `head` (the first bytes of a file of `fileSize` bytes) starts like a safetensors
    /// file: a plausible little-endian header length followed by `{` (or whitespace, which the
    /// reference parser accepts).
    public static func sniff(_ head: UnsafeRawBufferPointer, fileSize: Int) -> Bool {
        guard head.count >= 9, fileSize >= 9 else { return false }
        let n = head.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n >= 2, n <= UInt64(SafetensorsHeader.maxHeaderSize), Int(n) + 8 <= fileSize else { return false }
        var i = 8
        while i < head.count, i < 8 + Int(n) {
            switch head[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            case UInt8(ascii: "{"): return true
            default: return false
            }
        }
        return false
    }

    /// Reads one already-mapped safetensors file.
    static func read(mapped file: MappedFile) throws -> TensorBundle {
        let header = try SafetensorsHeader.parse(file.buffer, file: file.path)
        var bundle = TensorBundle(format: "safetensors")
        bundle.tensors.reserveCapacity(header.entries.count)
        var unaligned = 0
        for e in header.entries {
            let offset = header.dataStart + e.begin
            var storage = Storage(mapped: file, offset: offset, count: e.end - e.begin)
            // Files written by the reference are aligned to the element size; others may not be.
            // Kernels may bind the memory to the element type, so misaligned data gets an aligned copy.
            if Int(bitPattern: storage.bytes) % e.dtype.byteSize != 0 {
                storage = Storage(copying: storage.buffer)
                unaligned += 1
            }
            bundle.tensors[e.name] = try Tensor(dtype: e.dtype, shape: e.shape, storage: storage)
        }
        if unaligned > 0 {
            bundle.warnings.append("\(unaligned) tensors were not aligned to their element size in the file and were copied")
        }
        applyMetadata(header.metadata, to: &bundle)
        return bundle
    }

    /// Splits `__metadata__` into plain metadata and tied-tensor aliases. safetensors' `save_model`
    /// stores each dropped tied name as `metadata[dropped] = kept`; such entries (key not a tensor,
    /// value a tensor of this file) are restored as aliases sharing the kept tensor's storage.
    static func applyMetadata(_ metadata: [(String, String)], to bundle: inout TensorBundle) {
        for (k, v) in metadata {
            if bundle.tensors[k] == nil, let kept = bundle.tensors[v] {
                bundle.aliases[k] = v
                bundle.tensors[k] = kept
            } else {
                bundle.metadata[k] = v
            }
        }
    }

    /// An index is a JSON object (not a binary header): it starts with `{` after optional whitespace.
    static func looksLikeIndex(_ buf: UnsafeRawBufferPointer) -> Bool {
        for b in buf.prefix(64) {
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "{"): return true
            default: return false
            }
        }
        return false
    }
}
