import OrderedCollections
import WconvTensor

/// Options for `SafetensorsWriter.write`.
public struct SafetensorsWriteOptions {
    /// When set, tensors are split into shards of at most this many bytes (a single tensor larger
    /// than the limit gets a shard of its own) written as `<stem>-0000k-of-0000n.safetensors`
    /// beside the target, plus `<target>.index.json`. One shard is written as the plain target.
    public var maxShardSize: Int?
    public init(maxShardSize: Int? = nil) { self.maxShardSize = maxShardSize }
}

/// Writes safetensors exactly as the reference does (formats doc §5.1): u64 LE header length, the JSON
/// header (`__metadata__` first, tensors sorted by dtype descending in the reference enum order, then
/// by name) padded with spaces to a multiple of 8, then the tensors back to back, each aligned to its
/// element size. Tensors that share one storage and cover the same bytes (tied weights) are stored
/// once and the dropped names recorded as `__metadata__[dropped] = kept`, as `safetensors.torch.save_model`
/// does, so `load_model` and wconv both re-tie them. Files are written atomically.
public enum SafetensorsWriter {
    public static func write(_ bundle: TensorBundle, to path: String, options: SafetensorsWriteOptions = .init()) throws {
        _ = try writeFiles(bundle, to: path, options: options)
    }

    /// Same as `write`, returning the paths written (shards first, then the index).
    public static func writeFiles(_ bundle: TensorBundle, to path: String, options: SafetensorsWriteOptions = .init()) throws -> [String] {
        let plan = try Plan(bundle)
        if let limit = options.maxShardSize {
            guard limit > 0 else { throw WconvError(.usage, "the maximum shard size must be positive") }
            let shards = plan.split(maxBytes: limit)
            if shards.count > 1 { return try writeSharded(plan, shards: shards, path: path) }
        }
        try writeFile(plan, names: plan.stored.map(\.name), aliases: plan.aliases, to: path)
        return [path]
    }

    /// What gets stored: one entry per distinct tensor, and the tied names that point at them.
    struct Plan {
        var stored: [(name: String, tensor: Tensor)]
        /// alias → kept name.
        var aliases: [(String, String)]
        var metadata: [String: String]
        var byName: [String: Tensor]

        init(_ bundle: TensorBundle) throws {
            // Force-unwraps below index names taken from the bundle itself, never from a file.
            // Group names by identical view of one storage object.
            struct ViewKey: Hashable {
                var storage: ObjectIdentifier
                var dtype: DType
                var shape: [Int]
                var strides: [Int]
                var offset: Int
            }
            var groups: OrderedDictionary<ViewKey, [String]> = [:]
            for (name, t) in bundle.tensors {
                let key = ViewKey(storage: ObjectIdentifier(t.storage), dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset)
                groups[key, default: []].append(name)
            }
            stored = []
            aliases = []
            byName = [:]
            for (_, names) in groups {
                // Keep a name that is not itself recorded as an alias; among those the smallest,
                // as save_model does.
                let candidates = names.filter { bundle.aliases[$0] == nil }
                let pool = candidates.isEmpty ? names : candidates
                let kept = pool.min { SafetensorsWriter.byteOrder($0, $1) }!
                let t = bundle.tensors[kept]!
                stored.append((kept, t))
                byName[kept] = t
                for n in names where n != kept { aliases.append((n, kept)) }
            }
            metadata = bundle.metadata
            for (alias, _) in aliases { metadata[alias] = nil }
        }

        /// Greedy split in bundle order, like huggingface_hub's `split_state_dict_into_shards_factory`.
        func split(maxBytes: Int) -> [[String]] {
            var shards: [[String]] = []
            var current: [String] = []
            var size = 0
            for (name, t) in stored {
                let b = t.byteCount
                if b > maxBytes {
                    shards.append([name])
                    continue
                }
                if size + b > maxBytes && !current.isEmpty {
                    shards.append(current)
                    current = []
                    size = 0
                }
                current.append(name)
                size += b
            }
            if !current.isEmpty { shards.append(current) }
            return shards
        }
    }

    /// Byte-wise name order (Rust `String` ordering).
    static func byteOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Header JSON, unpadded, and each tensor's (name, begin, end) in write order.
    static func header(plan: Plan, names: [String], aliases: [(String, String)]) -> (json: [UInt8], order: [String]) {
        // Ranks looked up once per name, not twice per comparison.
        let order = names.map { (rank: SafetensorsDType.rank(plan.byName[$0]!.dtype), name: $0) }
            .sorted { $0.rank != $1.rank ? $0.rank > $1.rank : byteOrder($0.name, $1.name) }
            .map(\.name)
        var meta = plan.metadata
        for (alias, kept) in aliases { meta[alias] = kept }
        var members: [(String, JSONValue)] = []
        if !meta.isEmpty {
            members.append(("__metadata__", .object(meta.keys.sorted(by: byteOrder).map { ($0, .string(meta[$0]!)) })))
        }
        var offset = 0
        for name in order {
            let t = plan.byName[name]!
            let end = offset + t.byteCount
            members.append((name, ["dtype": .string(t.dtype.safetensorsName), "shape": .array(t.shape.map(JSONValue.int)),
                                   "data_offsets": [.int(offset), .int(end)]]))
            offset = end
        }
        let s = JSONValue.object(members).serialized
        var bytes = Array(s.utf8)
        let pad = (8 - bytes.count % 8) % 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pad))
        return (bytes, order)
    }

    static func writeFile(_ plan: Plan, names: [String], aliases: [(String, String)], to path: String) throws {
        let (json, order) = header(plan: plan, names: names, aliases: aliases)
        guard json.count <= SafetensorsHeader.maxHeaderSize else {
            throw WconvError(.invalidInput, "the header would be \(json.count) bytes, over safetensors' 100,000,000-byte limit; write shards with a maximum shard size", file: path)
        }
        try AtomicFileWriter.write(to: path) { w in
            try w.reserve(8 + json.count + order.reduce(0) { $0 + plan.byName[$1]!.byteCount })
            var head = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
            head += json
            // Header and tensors in one gathered write (AtomicFileWriter.write(gathering:)); a strided
            // view is copied to C order when its turn comes, after what is queued before it.
            try head.withUnsafeBytes { h in
                var queued = [WritePiece(h)]
                for name in order {
                    let t = plan.byName[name]!
                    if let bytes = t.contiguousBuffer {
                        queued.append(WritePiece(bytes, in: t.storage.mappedFile))
                    } else {
                        try w.write(gathering: queued)
                        queued = []
                        try t.withContiguousBytes { try w.write(gathering: [$0]) }
                    }
                }
                try w.write(gathering: queued)
            }
        }
    }

    static func writeSharded(_ plan: Plan, shards: [[String]], path: String) throws -> [String] {
        var base = path
        if base.hasSuffix(".index.json") { base.removeLast(".index.json".count) }
        let indexPath = base + ".index.json"
        var stem = base
        if stem.hasSuffix(".safetensors") { stem.removeLast(".safetensors".count) }
        let n = shards.count
        func fiveDigits(_ i: Int) -> String { let s = String(i); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        var written: [String] = []
        var weightMap: [(String, String)] = []
        var total = 0
        for (i, names) in shards.enumerated() {
            let shardPath = "\(stem)-\(fiveDigits(i + 1))-of-\(fiveDigits(n)).safetensors"
            let shardName = shardPath.split(separator: "/").last.map(String.init) ?? shardPath
            let set = Set(names)
            let shardAliases = plan.aliases.filter { set.contains($0.1) }
            try writeFile(plan, names: names, aliases: shardAliases, to: shardPath)
            for name in names {
                weightMap.append((name, shardName))
                total += plan.byName[name]!.byteCount
            }
            written.append(shardPath)
        }
        let text = ShardedCheckpoint.render(totalSize: total, weightMap: weightMap)
        try AtomicFileWriter.write(to: indexPath) { try $0.write(text) }
        written.append(indexPath)
        return written
    }
}
