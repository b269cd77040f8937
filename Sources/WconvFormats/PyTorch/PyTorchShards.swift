import OrderedCollections
import WconvTensor

/// Hugging Face sharded `.bin` checkpoints: `pytorch_model.bin.index.json` maps each tensor name to
/// one of the `pytorch_model-0000k-of-0000n.bin` files beside it.
enum PyTorchShards {
    static func read(indexPath: String, options: PyTorchReadOptions) throws -> TensorBundle {
        let file = try MappedFile(path: indexPath)
        guard file.size < 256 << 20 else { throw WconvError.invalid("index file of \(file.size) bytes is too large", file: indexPath) }
        guard let map = (try? JSONValue.parse(file.buffer, options: .python))?["weight_map"]?.object else {
            throw WconvError.invalid("not a sharded-checkpoint index: expected a JSON object with a \"weight_map\"", file: indexPath)
        }
        var shardOf: [String: String] = [:]
        var shards: [String] = []
        for (name, v) in map {
            guard let f = v.string, !f.contains("/"), !f.contains("\\"), f != "..", !f.isEmpty, !f.hasSuffix(".index.json") else {
                throw WconvError.invalid("weight_map entry '\(name)' names \(v.serialized), which is not a file beside the index", file: indexPath)
            }
            shardOf[name] = f
            if !shards.contains(f) { shards.append(f) }
        }
        shards.sort()
        let dir = indexPath.contains("/") ? String(indexPath[...indexPath.lastIndex(of: "/")!]) : ""
        var bundle = TensorBundle(format: "pytorch-sharded")
        var seen = Set<String>()
        for shard in shards {
            let b: TensorBundle
            do {
                b = try PyTorchReader.read(path: dir + shard, options: options)
            } catch let e as WconvError where e.kind == .invalidInput && e.message.hasPrefix("cannot open") {
                throw WconvError.invalid("shard '\(shard)' listed in the index is missing: \(e.message)", file: indexPath)
            }
            for (name, t) in b.tensors {
                guard shardOf[name] == shard else {
                    throw WconvError.invalid("tensor '\(name)' is in shard '\(shard)' but the index maps it to '\(shardOf[name] ?? "nothing")'", file: indexPath)
                }
                guard seen.insert(name).inserted else { throw WconvError.invalid("tensor '\(name)' appears in two shards", file: indexPath) }
                bundle.tensors[name] = t
            }
            for (k, v) in b.aliases { bundle.aliases[k] = v }
            for g in b.globalsSeen where !bundle.globalsSeen.contains(g) { bundle.globalsSeen.append(g) }
            for g in b.stubbedGlobals where !bundle.stubbedGlobals.contains(g) { bundle.stubbedGlobals.append(g) }
            bundle.warnings += b.warnings.map { "\(shard): \($0)" }
            for (k, v) in b.extras { bundle.extras["\(shard): \(k)"] = v }
        }
        let missing = shardOf.keys.filter { !seen.contains($0) }.sorted()
        guard missing.isEmpty else {
            throw WconvError.invalid("the index lists \(missing.count) tensors that no shard holds (first: \(missing.prefix(3).joined(separator: ", ")))", file: indexPath)
        }
        bundle.metadata["pytorch.shards"] = String(shards.count)
        return bundle
    }
}
