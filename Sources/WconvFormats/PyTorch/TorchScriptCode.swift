/// Reads `__parameters__` / `__buffers__` declarations from a TorchScript archive's `code/` files as
/// text (never executed), so weights come out in `state_dict()` order and plain tensor attributes are
/// told apart from parameters and buffers.
enum TorchScriptCode {
    static func declarations(zip: ZipArchive, prefix: String) -> [String: (params: [String], buffers: [String])] {
        var out: [String: (params: [String], buffers: [String])] = [:]
        let codeDir = prefix + "code/"
        // Code is only a hint for ordering: read at most 64 MiB of it in total.
        var budget = 64 << 20
        for e in zip.entries where e.name.hasPrefix(codeDir) && e.name.hasSuffix(".py") && e.uncompressedSize <= budget {
            budget -= e.uncompressedSize
            guard let data = try? zip.data(of: e) else { continue }
            let text = withExtendedLifetime(data) { String(decoding: data.buffer, as: UTF8.self) }
            let module = e.name.dropFirst(codeDir.count).dropLast(3).replacingSlashes
            var current: String?
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("class ") {
                    let rest = line.dropFirst(6)
                    let name = rest.prefix { $0 != "(" && $0 != ":" }
                    current = "\(module).\(name)"
                    // Register under the bare class name too, for mangled module paths.
                    if let c = current { out[c] = out[c] ?? ([], []) }
                    continue
                }
                guard let cls = current else { continue }
                let t = line.drop { $0 == " " }
                if t.hasPrefix("__parameters__ = [") {
                    out[cls]!.params = names(in: t)
                } else if t.hasPrefix("__buffers__ = [") {
                    out[cls]!.buffers = names(in: t)
                }
            }
        }
        // Bare-name fallback when unique.
        var byName: [String: [String]] = [:]
        for k in out.keys { byName[String(k.split(separator: ".").last ?? ""), default: []].append(k) }
        for (n, ks) in byName where ks.count == 1 && out[n] == nil { out[n] = out[ks[0]] }
        return out
    }

    static func names(in line: Substring) -> [String] {
        var result: [String] = []
        var i = line.startIndex
        while let q = line[i...].firstIndex(of: "\"") {
            let start = line.index(after: q)
            guard let end = line[start...].firstIndex(of: "\"") else { break }
            result.append(String(line[start..<end]))
            i = line.index(after: end)
        }
        return result
    }
}

extension Substring {
    var replacingSlashes: String { String(map { $0 == "/" ? "." : $0 }) }
}
