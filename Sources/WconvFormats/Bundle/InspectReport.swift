import WconvTensor

/// What `wconv inspect` reports about a bundle: totals, dtypes, tied tensors, per-module rows and
/// the `--json` document. (The text layout is the CLI's.)
public enum InspectReport {
    /// Files with more tensors than this get one row per module unless `--verbose`.
    public static let summaryThreshold = 40

    /// Bytes actually stored: tied tensors counted once.
    public static func storedBytes(_ b: TensorBundle) -> Int {
        b.tensors.filter { b.aliases[$0.key] == nil }.reduce(0) { $0 + $1.value.byteCount }
    }

    /// (dtype, tensors, elements) over stored tensors, most elements first.
    public static func dtypeBreakdown(_ b: TensorBundle) -> [(DType, Int, Int)] {
        var byType: [DType: (Int, Int)] = [:]
        for (name, t) in b.tensors where b.aliases[name] == nil {
            let v = byType[t.dtype] ?? (0, 0)
            byType[t.dtype] = (v.0 + 1, v.1 + t.numel)
        }
        return byType.sorted { $0.value.1 > $1.value.1 }.map { ($0.key, $0.value.0, $0.value.1) }
    }

    /// Tied groups, ordered by first name: tensors sharing one storage (in bundle order), then
    /// aliases not among them with their target (sorted).
    public static func tiedGroups(_ b: TensorBundle) -> [[String]] {
        var groups = b.sharedStorageGroups()
        let covered = Set(groups.joined())
        var byTarget: [String: [String]] = [:]
        for (alias, target) in b.aliases where !covered.contains(alias) { byTarget[target, default: [target]].append(alias) }
        groups += byTarget.values.map { $0.sorted() }
        return groups.sorted { $0[0] < $1[0] }
    }

    /// The tensors under one name prefix.
    public struct ModuleRow: Equatable, Sendable {
        public var module: String
        public var tensors: Int
        /// Elements and bytes of stored tensors (aliases not counted).
        public var elements: Int
        public var bytes: Int
        public var dtypes: Set<String>

        public init(module: String, tensors: Int = 0, elements: Int = 0, bytes: Int = 0, dtypes: Set<String> = []) {
            self.module = module
            self.tensors = tensors
            self.elements = elements
            self.bytes = bytes
            self.dtypes = dtypes
        }
    }

    /// One row per module (name prefix), at the shallowest depth (up to 4) that splits the names
    /// into at least 2 rows; rows in the order their first tensor appears.
    public static func moduleRows(_ b: TensorBundle) -> [ModuleRow] {
        func prefix(_ name: String, _ depth: Int) -> String {
            name.split(whereSeparator: { $0 == "." || $0 == "/" }).prefix(depth).joined(separator: ".")
        }
        let names = Array(b.tensors.keys)
        var depth = 1
        while depth < 4, Set(names.map { prefix($0, depth) }).count < 2 { depth += 1 }
        var rows: [ModuleRow] = []
        var index: [String: Int] = [:]
        for (name, t) in b.tensors {
            let p = prefix(name, depth)
            if index[p] == nil { index[p] = rows.count; rows.append(ModuleRow(module: p)) }
            let i = index[p]!
            rows[i].tensors += 1
            if b.aliases[name] == nil { rows[i].elements += t.numel; rows[i].bytes += t.byteCount }
            rows[i].dtypes.insert(t.dtype.rawValue)
        }
        return rows
    }

    /// The `--json` document (docs/cli-json.md); `stats` adds each tensor's statistics.
    public static func json(file: String, format: FileFormat, bundle b: TensorBundle, stats: [String: TensorStats]?) -> JSONValue {
        let tensors: [JSONValue] = b.tensors.map { name, t in
            var m: [(String, JSONValue)] = [
                ("name", .string(name)), ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .int($0) })), ("bytes", .int(t.byteCount)),
            ]
            if let target = b.aliases[name] { m.append(("alias_of", .string(target))) }
            if let s = stats?[name] {
                m.append(("stats", .object([
                    ("min", .double(s.min)), ("max", .double(s.max)), ("mean", .double(s.mean)), ("std", .double(s.std)),
                    ("nan", .int(s.nanCount)), ("inf", .int(s.infCount)),
                ])))
            }
            return .object(m)
        }
        let stored = b.tensors.filter { b.aliases[$0.key] == nil }
        return .object([
            ("file", .string(file)),
            ("format", .string(format.rawValue)),
            ("reader_format", .string(b.format)),
            ("tensors", .array(tensors)),
            ("totals", .object([
                ("tensors", .int(b.tensors.count)), ("stored_tensors", .int(stored.count)),
                ("elements", .int(stored.values.reduce(0) { $0 + $1.numel })), ("bytes", .int(storedBytes(b))),
                ("dtypes", .object(dtypeBreakdown(b).map { ($0.0.rawValue, .object([("tensors", .int($0.1)), ("elements", .int($0.2))])) })),
            ])),
            ("metadata", .object(b.metadata.keys.sorted().map { ($0, .string(b.metadata[$0]!)) })),
            ("tied", .array(tiedGroups(b).map { .array($0.map { .string($0) }) })),
            ("extras", .object(b.extras.map { ($0.key, .string($0.value)) })),
            ("globals_seen", .array(b.globalsSeen.map { .string($0) })),
            ("stubbed_globals", .array(b.stubbedGlobals.map { .string($0) })),
            ("warnings", .array(b.warnings.map { .string($0) })),
        ])
    }
}
