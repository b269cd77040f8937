import OrderedCollections
import WconvTensor

/// Finds the model's tensors in a decoded pickle tree: a state dict, a checkpoint dict that holds one,
/// a pickled `nn.Module`, or a TorchScript module object. Everything not chosen is summarised as extras.
struct TensorTreeWalker {
    struct Result {
        var tensors: [(String, PickleTensor)] = []
        var extras: OrderedDictionary<String, String> = [:]
        var warnings: [String] = []
        var metadata: [String: String] = [:]
        var isModule = false
        /// Module visits, capped: shared submodules are walked under each path, as state_dict() does.
        var visits = 0
    }

    /// Parameter/buffer order from TorchScript `code/` (class qualified name → names).
    var scriptOrder: [String: (params: [String], buffers: [String])] = [:]
    let path: String
    static let maxDepth = 200

    /// Keys that hold the weights in common training checkpoints, most specific first.
    static let preferredKeys = ["model_state_dict", "state_dict", "model", "net", "network", "ema", "model_ema",
                                "ema_state_dict", "module", "generator", "params", "weights", "student", "teacher", "backbone"]

    // MARK: entry point

    func extract(_ root: PickleValue, key: String?) throws -> Result {
        var r = Result()
        if let key {
            let (value, parentSummary) = try navigate(root, key)
            try collect(value, into: &r, what: "'\(key)'")
            r.metadata["pytorch.state_dict_key"] = key
            r.extras.merge(parentSummary) { a, _ in a }
            return r
        }
        switch root {
        case .object(let o) where isModule(o):
            try collect(root, into: &r, what: "the module")
            return r
        case .dict(let d):
            let direct = d.values.reduce(0) { $0 + (isTensor($1) ? 1 : 0) }
            var candidates: [(key: String, value: PickleValue, count: Int)] = []
            for (k, v) in zip(d.keys, d.values) {
                guard let ks = keyString(k) else { continue }
                let c = modelTensorCount(v)
                if c > 0 { candidates.append((ks, v, c)) }
            }
            let best = candidates.map(\.count).max() ?? 0
            if direct > 0 && direct >= best {
                try collect(root, into: &r, what: "the state dict")
                return r
            }
            guard !candidates.isEmpty else {
                let keys = d.keys.prefix(20).map { keyString($0) ?? $0.kindName }.joined(separator: ", ")
                throw WconvError.invalid("no tensors found: the file holds a dict with keys [\(keys)] but none of them is a state dict or module; pass --key to pick one", file: path)
            }
            let chosen = Self.preferredKeys.lazy.compactMap { p in candidates.first { $0.key == p } }.first
                ?? candidates.max { $0.count < $1.count }!
            var inner = chosen.value
            var keyPath = [chosen.key]
            // Descend through wrappers such as {'state_dict': {'model': {...}}}.
            while case .dict(let sub) = inner, !sub.values.contains(where: isTensor), keyPath.count < 6 {
                let subs = zip(sub.keys, sub.values).compactMap { k, v -> (String, PickleValue, Int)? in
                    guard let ks = keyString(k) else { return nil }
                    let c = modelTensorCount(v)
                    return c > 0 ? (ks, v, c) : nil
                }
                guard let pick = Self.preferredKeys.lazy.compactMap({ p in subs.first { $0.0 == p } }).first ?? subs.max(by: { $0.2 < $1.2 }) else { break }
                inner = pick.1
                keyPath.append(pick.0)
            }
            try collect(inner, into: &r, what: "'\(keyPath.joined(separator: "."))'")
            r.metadata["pytorch.state_dict_key"] = keyPath.joined(separator: ".")
            r.warnings.append("checkpoint: weights taken from '\(keyPath.joined(separator: "."))' (use --key to choose another entry)")
            for c in candidates where c.key != chosen.key {
                r.warnings.append("checkpoint also holds \(c.count) tensors under '\(c.key)'; pass --key \(c.key) to read those instead")
            }
            for (k, v) in zip(d.keys, d.values) {
                let ks = keyString(k) ?? k.kindName
                if ks == chosen.key { continue }
                r.extras[ks] = summary(v, depth: 0)
            }
            return r
        default:
            if case .object(let o) = root {
                throw WconvError.invalid("the file holds a \(o.global.qualifiedName) object, which is neither a state dict nor an nn.Module; no tensors to read", file: path)
            }
            if let items = root.sequenceItems, !items.isEmpty, items.allSatisfy(isTensor) {
                for (i, v) in items.enumerated() { r.tensors.append((String(i), try tensorOf(v))) }
                r.warnings.append("the file holds a \(root.kindName) of \(items.count) tensors; they are named by index")
                return r
            }
            if case .tensor = root {
                r.tensors = [("tensor", try tensorOf(root))]
                r.warnings.append("the file holds a single tensor; it is named 'tensor'")
                return r
            }
            throw WconvError.invalid("the file holds a \(root.kindName), not a state dict or model", file: path)
        }
    }

    // MARK: collection

    func tensorOf(_ v: PickleValue) throws -> PickleTensor {
        if case .tensor(let t) = v { return t }
        throw WconvError.invalid("expected a tensor, found a \(v.kindName)", file: path)
    }

    func isTensor(_ v: PickleValue) -> Bool {
        if case .tensor = v { return true }
        return false
    }

    func isModule(_ o: PickleObject) -> Bool {
        if o.global.module.hasPrefix("__torch__") { return true }
        guard let st = o.stateDict else { return false }
        return st["_parameters"] != nil || st["_modules"] != nil
    }

    func keyString(_ k: PickleValue) -> String? {
        switch k {
        case .string(let s): return s
        case .int(let i): return String(i)
        default: return nil
        }
    }

    /// Tensors a value would yield as a model (direct tensors of a dict, or a module's weights).
    func modelTensorCount(_ v: PickleValue) -> Int {
        switch v {
        case .dict(let d):
            let direct = d.values.reduce(0) { $0 + (isTensor($1) ? 1 : 0) }
            if direct > 0 { return direct }
            // A wrapper dict one level up ({'state_dict': {'model': {...}}}).
            return d.values.reduce(0) { acc, x in
                if case .dict(let s) = x { return acc + s.values.reduce(0) { $0 + (isTensor($1) ? 1 : 0) } }
                return acc
            }
        case .object(let o) where isModule(o):
            var r = Result()
            try? collect(v, into: &r, what: "")
            return r.tensors.count
        default: return 0
        }
    }

    func collect(_ v: PickleValue, into r: inout Result, what: String) throws {
        switch v {
        case .dict(let d):
            for (k, val) in zip(d.keys, d.values) {
                guard let name = keyString(k) else {
                    r.warnings.append("\(what): skipped an entry whose key is a \(k.kindName)")
                    continue
                }
                switch val {
                case .tensor(let t): r.tensors.append((name, t))
                case .object(let o) where o.isCallRecord && o.global.kind == .unknown:
                    throw WconvError(.unsafe, "state dict entry '\(name)' is built by calling \(o.global.qualifiedName), which is not allow-listed; refusing the file (wconv never runs code from model files)", file: path)
                case .object(let o) where o.global.kind == .unsupportedTensorRebuild:
                    throw WconvError.invalid("state dict entry '\(name)' is built by \(o.global.qualifiedName) (quantized, sparse or subclass tensor), which wconv does not support", file: path)
                default:
                    r.extras[name] = summary(val, depth: 0)
                }
            }
        case .object(let o) where isModule(o):
            r.isModule = true
            r.metadata["pytorch.module_class"] = o.global.qualifiedName
            var visited = Set<ObjectIdentifier>()
            try walkModule(o, prefix: "", into: &r, depth: 0, visited: &visited)
        case .object(let o):
            throw WconvError.invalid("\(what) is a \(o.global.qualifiedName) object, not a state dict or nn.Module", file: path)
        default:
            throw WconvError.invalid("\(what) is a \(v.kindName), not a state dict or nn.Module", file: path)
        }
    }

    func walkModule(_ o: PickleObject, prefix: String, into r: inout Result, depth: Int, visited: inout Set<ObjectIdentifier>) throws {
        guard depth < Self.maxDepth else {
            throw WconvError.invalid("modules nested deeper than \(Self.maxDepth) at '\(prefix)'", file: path)
        }
        // A module object reached twice (shared submodule): torch's state_dict lists it under each
        // path; tensors stay shared through their storage.
        r.visits += 1
        guard r.visits <= 1_000_000 else {
            throw WconvError.invalid("module tree has more than 1,000,000 module paths (shared submodules nested repeatedly); refusing", file: path)
        }
        guard let st = o.stateDict else { return }
        if o.global.module.hasPrefix("__torch__") {
            try walkScriptModule(o, st, prefix: prefix, into: &r, depth: depth, visited: &visited)
            return
        }
        if case .dict(let params)? = st["_parameters"] {
            for (k, v) in zip(params.keys, params.values) {
                guard let n = keyString(k) else { continue }
                if case .tensor(let t) = v { r.tensors.append((prefix + n, t)) }
            }
        }
        var nonPersistent = Set<String>()
        if case .set(let s)? = st["_non_persistent_buffers_set"] {
            for x in s.items { if let n = x.asString { nonPersistent.insert(n) } }
        }
        if case .dict(let bufs)? = st["_buffers"] {
            for (k, v) in zip(bufs.keys, bufs.values) {
                guard let n = keyString(k), !nonPersistent.contains(n) else { continue }
                if case .tensor(let t) = v { r.tensors.append((prefix + n, t)) }
            }
        }
        if case .dict(let mods)? = st["_modules"] {
            for (k, v) in zip(mods.keys, mods.values) {
                guard let n = keyString(k), case .object(let child) = v else { continue }
                try walkModule(child, prefix: prefix + n + ".", into: &r, depth: depth + 1, visited: &visited)
            }
        }
    }

    /// TorchScript: attributes live in the BUILD dict; parameters and buffers first (in the order the
    /// code declares them, as `state_dict()` lists them), then submodules.
    func walkScriptModule(_ o: PickleObject, _ st: PickleDict, prefix: String, into r: inout Result, depth: Int, visited: inout Set<ObjectIdentifier>) throws {
        let order = scriptOrder[o.global.qualifiedName] ?? scriptOrder[o.global.name]
        var emitted = Set<String>()
        if let order {
            for n in order.params + order.buffers {
                if case .tensor(let t)? = st[n] { r.tensors.append((prefix + n, t)); emitted.insert(n) }
            }
        }
        for (k, v) in zip(st.keys, st.values) {
            guard let n = keyString(k), !emitted.contains(n) else { continue }
            if case .tensor(let t) = v {
                // Without declarations every tensor attribute counts; with them, undeclared tensors are
                // plain attributes and not part of state_dict().
                if order == nil { r.tensors.append((prefix + n, t)) }
            }
        }
        for (k, v) in zip(st.keys, st.values) {
            guard let n = keyString(k), case .object(let child) = v, child.global.module.hasPrefix("__torch__") else { continue }
            try walkModule(child, prefix: prefix + n + ".", into: &r, depth: depth + 1, visited: &visited)
        }
    }

    // MARK: --key

    func navigate(_ root: PickleValue, _ key: String) throws -> (PickleValue, OrderedDictionary<String, String>) {
        var cur = root
        var extras: OrderedDictionary<String, String> = [:]
        for (i, part) in key.split(separator: ".", omittingEmptySubsequences: false).map(String.init).enumerated() {
            let next: PickleValue?
            switch cur {
            case .dict(let d):
                next = d[part] ?? Int(part).flatMap { d[intKey: $0] }
                if i == 0 {
                    for (k, v) in zip(d.keys, d.values) where keyString(k) != part { extras[keyString(k) ?? k.kindName] = summary(v, depth: 0) }
                }
            case .object(let o):
                next = o.stateDict?[part] ?? o.dictItems?[part]
            case .list(let l):
                next = Int(part).flatMap { $0 >= 0 && $0 < l.items.count ? l.items[$0] : nil }
            default:
                next = nil
            }
            guard let n = next else {
                var avail = ""
                if case .dict(let d) = cur { avail = "; available keys: " + d.keys.prefix(30).map { keyString($0) ?? $0.kindName }.joined(separator: ", ") }
                throw WconvError(.usage, "--key \(key): no entry '\(part)' in a \(cur.kindName)\(avail)", file: path)
            }
            cur = n
        }
        return (cur, extras)
    }

    // MARK: summaries

    func summary(_ v: PickleValue, depth: Int) -> String {
        switch v {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt: return "int (more than 64 bits)"
        case .float(let d): return "\(d)"
        case .string(let s): return s.count > 80 ? "'\(s.prefix(77))…'" : "'\(s)'"
        case .bytes(let b): return "bytes (\(b.count))"
        case .tensor(let t): return "tensor \(t.dtypeName)\(t.shape)"
        case .storage: return "storage"
        case .global(let g): return g.qualifiedName
        case .object(let o):
            if let n = o.stateDict?.count { return "\(o.global.qualifiedName) object (\(n) attributes)" }
            return o.isCallRecord ? "\(o.global.qualifiedName)(…) (not evaluated)" : "\(o.global.qualifiedName) object"
        case .tuple, .list, .set:
            let items = v.sequenceItems ?? { if case .set(let s) = v { return s.items }; return [] }()
            if items.count <= 4, depth < 2 { return "(" + items.map { summary($0, depth: depth + 1) }.joined(separator: ", ") + ")" }
            var counts = TensorCount()
            var seen = Set<ObjectIdentifier>()
            counts.add(v, depth: 0, seen: &seen)
            return "\(v.kindName) of \(items.count) items" + (counts.tensors > 0 ? ", \(counts.describe)" : "")
        case .dict(let d):
            if case .dict(let state)? = d["state"], case .list(let groups)? = d["param_groups"] {
                var counts = TensorCount()
                var seen = Set<ObjectIdentifier>()
                counts.add(.dict(state), depth: 0, seen: &seen)
                var g = ""
                if case .dict(let g0)? = groups.items.first {
                    let keys = ["lr", "betas", "momentum", "eps", "weight_decay"]
                    g = keys.compactMap { k in g0[k].map { "\(k)=\(summary($0, depth: 1))" } }.joined(separator: ", ")
                }
                return "optimizer state: \(state.count) parameters with state, \(counts.describe); \(groups.items.count) param group(s)" + (g.isEmpty ? "" : " (\(g))")
            }
            var counts = TensorCount()
            var seen = Set<ObjectIdentifier>()
            counts.add(v, depth: 0, seen: &seen)
            if depth < 1, d.count <= 6, counts.tensors == 0 {
                return "{" + zip(d.keys, d.values).map { "\(keyString($0) ?? $0.kindName): \(summary($1, depth: depth + 1))" }.joined(separator: ", ") + "}"
            }
            return "dict of \(d.count) entries" + (counts.tensors > 0 ? ", \(counts.describe)" : "")
        }
    }

    struct TensorCount {
        var tensors = 0
        var elements = 0
        var describe: String { "\(tensors) tensors (\(elements) elements)" }

        mutating func add(_ v: PickleValue, depth: Int, seen: inout Set<ObjectIdentifier>) {
            guard depth < 64 else { return }
            switch v {
            case .tensor(let t):
                tensors += 1
                elements = elements &+ t.shape.reduce(1) { $0 &* $1 }
            case .dict(let d):
                guard seen.insert(ObjectIdentifier(d)).inserted else { return }
                for x in d.values { add(x, depth: depth + 1, seen: &seen) }
            case .list(let l):
                guard seen.insert(ObjectIdentifier(l)).inserted else { return }
                for x in l.items { add(x, depth: depth + 1, seen: &seen) }
            case .tuple(let t):
                guard seen.insert(ObjectIdentifier(t)).inserted else { return }
                for x in t.items { add(x, depth: depth + 1, seen: &seen) }
            case .object(let o):
                guard seen.insert(ObjectIdentifier(o)).inserted else { return }
                if let s = o.state { add(s, depth: depth + 1, seen: &seen) }
            default: break
            }
        }
    }
}
