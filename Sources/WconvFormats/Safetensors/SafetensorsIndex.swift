import OrderedCollections
import WconvTensor

/// Sharded checkpoints: `model.safetensors.index.json` with `{"metadata": {"total_size": …},
/// "weight_map": {tensor: shard file}}` (Hugging Face convention, formats doc §5.4).
enum SafetensorsIndex {
    /// Parsed `weight_map`, in file order, plus the declared total size when present.
    struct Index {
        var weightMap: [(tensor: String, shard: String)]
        var totalSize: Int?
    }

    /// Parses an index JSON (duplicate keys refused). `file` names the file in messages.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> Index {
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes, options: .strict)
        } catch let f as JSONParseError {
            throw WconvError(.invalidInput, "sharded-checkpoint index is not valid JSON: \(f.message) at byte \(f.offset)", file: file)
        }
        guard case .object(let top) = json else {
            throw WconvError(.invalidInput, "sharded-checkpoint index is \(json.typeName), expected a JSON object with \"weight_map\"", file: file)
        }
        var index = Index(weightMap: [], totalSize: nil)
        var sawMap = false
        for (k, v) in top {
            switch k {
            case "weight_map":
                guard case .object(let m) = v else {
                    throw WconvError(.invalidInput, "\"weight_map\" is \(v.typeName), expected an object of tensor name → shard file", file: file)
                }
                sawMap = true
                for (name, shardV) in m {
                    guard case .string(let shard) = shardV else {
                        throw WconvError(.invalidInput, "weight_map[\"\(name)\"] is \(shardV.typeName), expected a shard file name", file: file)
                    }
                    index.weightMap.append((name, shard))
                }
            case "metadata":
                // Third-party tools put extra keys (or file sizes) here: tolerate anything.
                if case .object(let meta) = v {
                    for (mk, mv) in meta where mk == "total_size" { index.totalSize = mv.nonNegativeInt }
                }
            default:
                break
            }
        }
        guard sawMap else {
            throw WconvError(.invalidInput, "JSON file has no \"weight_map\": not a sharded-checkpoint index", file: file)
        }
        return index
    }

    /// Reads every shard named by the index and merges them into one bundle. Shard names must be
    /// plain file names beside the index; every shard must exist; the union of the shards' tensor
    /// names must equal the weight_map keys exactly, each in the shard the map names.
    static func read(indexPath: String, file: MappedFile) throws -> TensorBundle {
        let index = try parse(file.buffer, file: indexPath)
        let dir: String
        if let slash = indexPath.lastIndex(of: "/") { dir = String(indexPath[...slash]) } else { dir = "" }

        var shardOrder: [String] = []
        var seenShards = Set<String>()
        var expected: [String: String] = [:]
        for (name, shard) in index.weightMap {
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw WconvError(.unsafe, "weight_map[\"\(name)\"] names shard \"\(shard)\"; shards must be plain file names in the index's directory", file: indexPath)
            }
            if seenShards.insert(shard).inserted { shardOrder.append(shard) }
            expected[name] = shard
        }

        var bundle = TensorBundle(format: "safetensors-sharded")
        for shard in shardOrder {
            let shardPath = dir + shard
            let mapped: MappedFile
            do {
                mapped = try MappedFile(path: shardPath)
            } catch {
                throw WconvError(.invalidInput, "shard \"\(shard)\" named in the weight_map cannot be opened (\((error as? WconvError)?.message ?? "\(error)")); download every shard beside the index", file: indexPath)
            }
            let part = try SafetensorsReader.read(mapped: mapped)
            for (name, t) in part.tensors {
                if let target = part.aliases[name] {
                    bundle.aliases[name] = target
                    if bundle.tensors[name] == nil { bundle.tensors[name] = t }
                    continue
                }
                guard let want = expected[name] else {
                    throw WconvError(.invalidInput, "shard \"\(shard)\" holds tensor \"\(name)\" which the weight_map does not list; the index and the shards do not match", file: indexPath)
                }
                guard want == shard else {
                    throw WconvError(.invalidInput, "tensor \"\(name)\" is in shard \"\(shard)\" but the weight_map says \"\(want)\"", file: indexPath)
                }
                guard bundle.tensors[name] == nil || bundle.aliases[name] != nil else {
                    throw WconvError(.invalidInput, "tensor \"\(name)\" appears in more than one shard", file: indexPath)
                }
                bundle.aliases[name] = nil
                bundle.tensors[name] = t
            }
            for (k, v) in part.metadata where bundle.metadata[k] == nil { bundle.metadata[k] = v }
            bundle.warnings += part.warnings.map { "\(shard): \($0)" }
        }
        for (name, shard) in index.weightMap where bundle.tensors[name] == nil || bundle.aliases[name] != nil {
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
