import WconvTensor

/// Sharded checkpoints: `model.safetensors.index.json` or `pytorch_model.bin.index.json` with
/// `{"metadata": {"total_size": …}, "weight_map": {tensor: shard file}}` (Hugging Face convention,
/// formats doc §5.4). One reader for both shard formats: one set of path rules, one set of
/// consistency checks, one error kind for each fault.
enum ShardedCheckpoint {
    /// Parsed `weight_map`, in file order, plus the declared total size when present.
    struct Index {
        var weightMap: [(tensor: String, shard: String)]
        var totalSize: Int?
    }

    /// Indexes are KBs; anything near this is not one.
    static let maxIndexSize = 200_000_000

    /// Parses an index JSON (duplicate keys refused). `file` names the file in messages.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> Index {
        guard bytes.count <= maxIndexSize else {
            throw WconvError(.invalidInput, "a \(bytes.count)-byte JSON file is too large to be a checkpoint index", file: file)
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes, options: .strict)
        } catch let f as JSONParseError {
            throw WconvError(.invalidInput, "sharded-checkpoint index is not valid JSON: \(f.message) at byte \(f.offset)", file: file)
        }
        guard case .object(let top) = json else {
            throw WconvError(.invalidInput, "sharded-checkpoint index is \(json.typeName), expected a JSON object with \"weight_map\"", file: file)
        }
        guard let mapValue = top["weight_map"] else {
            throw WconvError(.invalidInput, "JSON file has no \"weight_map\": not a sharded-checkpoint index", file: file)
        }
        guard case .object(let map) = mapValue else {
            throw WconvError(.invalidInput, "\"weight_map\" is \(mapValue.typeName), expected an object of tensor name → shard file", file: file)
        }
        var index = Index(weightMap: [], totalSize: nil)
        for (name, shardValue) in map {
            guard case .string(let shard) = shardValue else {
                throw WconvError(.invalidInput, "weight_map[\"\(name)\"] is \(shardValue.typeName), expected a shard file name", file: file)
            }
            index.weightMap.append((name, shard))
        }
        // Third-party tools put extra keys (or file sizes) in "metadata": anything is tolerated.
        index.totalSize = top["metadata"]?["total_size"]?.nonNegativeInt
        return index
    }

    /// The path rule: a shard is a plain file name in the index's directory — not empty, not `.`
    /// or `..`, no `/` or `\`, not itself an index. Anything else could name a file outside the
    /// folder (or loop), so it is refused as unsafe.
    static func checkShardName(_ shard: String, tensor: String, indexPath: String) throws {
        guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != "..",
              !shard.hasSuffix(".index.json") else {
            throw WconvError(.unsafe, "weight_map[\"\(tensor)\"] names shard \"\(shard)\"; shards must be plain file names in the index's directory", file: indexPath)
        }
    }

    /// Reads every shard named by the index with `readShard` (given the shard's mapping) and merges them
    /// into one bundle of `format`. Every shard must exist; each tensor must be in the shard the map
    /// names, in one shard only; every name the map lists must be held. A tied tensor a shard stores
    /// once (an alias the map does not list) is kept as an alias. Warnings and extras are prefixed
    /// with the shard's name; metadata is the first shard's where keys repeat.
    static func read(indexPath: String, file: MappedFile, format: String,
                     readShard: (MappedFile) throws -> TensorBundle) throws -> TensorBundle {
        let index = try parse(file.buffer, file: indexPath)
        let dir: String
        if let slash = indexPath.lastIndex(of: "/") { dir = String(indexPath[...slash]) } else { dir = "" }

        var shardOrder: [String] = []
        var seenShards = Set<String>()
        var expected: [String: String] = [:]
        for (name, shard) in index.weightMap {
            try checkShardName(shard, tensor: name, indexPath: indexPath)
            if seenShards.insert(shard).inserted { shardOrder.append(shard) }
            expected[name] = shard
        }

        var bundle = TensorBundle(format: format)
        var held = Set<String>()
        for shard in shardOrder {
            let mapped: MappedFile
            do {
                mapped = try MappedFile(path: dir + shard)
            } catch let e as WconvError {
                throw WconvError(.invalidInput, "shard \"\(shard)\" named in the weight_map cannot be opened (\(e.message)); download every shard beside the index", file: indexPath)
            }
            let part = try readShard(mapped)
            for (name, t) in part.tensors {
                guard let want = expected[name] else {
                    // Tied weights stored once: the shard records the alias, the map lists the target only.
                    if let target = part.aliases[name] {
                        if bundle.tensors[name] == nil {
                            bundle.tensors[name] = t
                            bundle.aliases[name] = target
                        }
                        continue
                    }
                    throw WconvError(.invalidInput, "shard \"\(shard)\" holds tensor \"\(name)\" which the weight_map does not list; the index and the shards do not match", file: indexPath)
                }
                guard want == shard else {
                    throw WconvError(.invalidInput, "tensor \"\(name)\" is in shard \"\(shard)\" but the weight_map says \"\(want)\"", file: indexPath)
                }
                guard held.insert(name).inserted else {
                    throw WconvError(.invalidInput, "tensor \"\(name)\" appears in more than one shard", file: indexPath)
                }
                bundle.tensors[name] = t
                bundle.aliases[name] = part.aliases[name]
            }
            for (k, v) in part.metadata where bundle.metadata[k] == nil { bundle.metadata[k] = v }
            for (k, v) in part.extras { bundle.extras["\(shard): \(k)"] = v }
            bundle.globalsSeen += part.globalsSeen.filter { !bundle.globalsSeen.contains($0) }
            bundle.stubbedGlobals += part.stubbedGlobals.filter { !bundle.stubbedGlobals.contains($0) }
            bundle.warnings += part.warnings.map { "\(shard): \($0)" }
        }
        for (name, shard) in index.weightMap where !held.contains(name) {
            throw WconvError(.invalidInput, "weight_map lists tensor \"\(name)\" in shard \"\(shard)\" but that shard does not hold it", file: indexPath)
        }
        return bundle
    }

    /// The index JSON exactly as huggingface_hub writes it (`json.dump(index, f, indent=2)`:
    /// weight_map in shard order, ASCII escapes, no trailing newline).
    static func render(totalSize: Int, weightMap: [(String, String)]) -> String {
        let map = JSONValue.object(weightMap.map { ($0.0, .string($0.1)) })
        return JSONValue.object([("metadata", ["total_size": .int(totalSize)]), ("weight_map", map)]).text(.pythonIndented)
    }
}
