import WconvTensor

/// What `wconv import` found and did, tensor by tensor (printed, or emitted with `--json`).
public struct ImportReport: Codable, Sendable {
    /// One source tensor and what became of it.
    public struct TensorEntry: Codable, Sendable {
        /// Name in the source file.
        public var source: String
        /// Name in the canonical model (differs when renamed).
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// `used`, `renamed` (and used), `unused` (kept, not read by any op), `alias`.
        public var status: String
        public var usedBy: [String]
        public var rule: String?
        public var reason: String?
        public var buffer: Bool
    }
    public struct FamilyAttempt: Codable, Sendable {
        public var family: String
        public var reason: String
    }
    public struct Head: Codable, Sendable {
        public var node: String
        public var weight: String
        public var inFeatures: Int
        public var outFeatures: Int
    }

    public var source: String
    public var sourceSHA256: String?
    public var format: String
    public var output: String?
    public var architecture: String?
    public var variant: String?
    public var evidence: [String]
    /// Set when the file imported as weights only: why no graph could be built.
    public var weightsOnlyReason: String?
    public var familiesTried: [FamilyAttempt]
    public var nodeCount: Int
    public var opCounts: [String: Int]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var tensors: [TensorEntry]
    public var groups: [LayerGroup]
    public var head: Head?
    public var preprocessing: Preprocessing?
    public var warnings: [String]
    /// What else the file holds besides the tensors (optimizer state, epoch, …), key → summary.
    public var extras: [String: String] = [:]
    /// Classes the pickle referenced that became inert stubs (never called).
    public var stubbedGlobals: [String] = []

    /// The classification/task head: the Linear producing a graph output (else the last Linear).
    static func findHead(_ g: ModelGraph) -> Head? {
        let outs = Set(g.outputs.map(\.name))
        let linears = g.nodes.filter { $0.op == .linear }
        guard let n = linears.last(where: { !Set($0.outputs).isDisjoint(with: outs) }) ?? linears.last,
              n.inputs.count > 1, let w = g.parameters[n.inputs[1]], w.rank == 2 else { return nil }
        return Head(node: n.name, weight: n.inputs[1], inFeatures: w.shape[1], outFeatures: w.shape[0])
    }

    /// Human-readable report: a summary that fits a screen (architecture, groups with their
    /// parameter counts, every unused or aliased tensor, renames by rule); `verbose` adds one line
    /// per tensor.
    public func render(verbose: Bool = false) -> String {
        var s: [String] = []
        s.append("source:        \(source)")
        if let h = sourceSHA256 { s.append("sha256:        \(h)") }
        s.append("format:        \(format)")
        if let a = architecture {
            s.append("architecture:  \(a)\(variant.map { " — \($0)" } ?? "")")
            for e in evidence { s.append("  evidence: \(e)") }
        } else {
            s.append("architecture:  none (weights only)")
            if let r = weightsOnlyReason { s.append("  reason: " + r.replacingOccurrences(of: "\n", with: "\n  ")) }
        }
        if !familiesTried.isEmpty && architecture != nil {
            s.append("  also tried: " + familiesTried.map { "\($0.family) (\($0.reason))" }.joined(separator: "; "))
        }
        if nodeCount > 0 {
            s.append("graph:         \(nodeCount) nodes — " + opCounts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ", "))
            s.append("inputs:        " + inputs.map { "\($0.name) \($0.dtype.rawValue)\(ModelGraph.show($0.shape))" }.joined(separator: ", "))
            s.append("outputs:       " + outputs.map { "\($0.name) \(ModelGraph.show($0.shape))" }.joined(separator: ", "))
        }
        if let h = head { s.append("head:          \(h.node) (\(h.weight)): \(h.inFeatures) → \(h.outFeatures)") }
        if let p = preprocessing {
            s.append("preprocessing: resize \(p.resizeShorter.map(String.init) ?? "-") → crop \(p.inputSize.map(String.init).joined(separator: "×")), mean \(p.mean), std \(p.std), \(p.interpolation), \(p.channelOrder)\(p.assumed == true ? " (assumed: the family's usual values; the file records none — training fits the input size to the data)" : "")")
        } else if architecture != nil { s.append("preprocessing: none (not an image model)") }
        if !groups.isEmpty {
            let total = groups.reduce(0) { $0 + $1.parameterCount }
            s.append("layer groups:  \(groups.count), \(Self.count(total)) parameter values")
            let w = groups.map(\.name.count).max() ?? 0
            for g in groups {
                s.append("  \(g.kind.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(g.name.padding(toLength: w, withPad: " ", startingAt: 0))  \(g.parameters.count) parameters (\(Self.count(g.parameterCount)) values), \(g.buffers.count) buffers")
            }
        }
        let used = tensors.filter { $0.status == "used" }.count
        let renamed = tensors.filter { $0.status == "renamed" }
        let unused = tensors.filter { $0.status == "unused" }
        s.append("tensors:       \(tensors.count) in the file: \(used) used as named, \(renamed.count) renamed, \(unused.count) kept but unused")
        if verbose {
            for t in tensors { s.append(Self.line(t)) }
        } else {
            s += summaryLines()
        }
        for (k, v) in extras.sorted(by: { $0.key < $1.key }) { s.append("also in file:  \(k): \(v)") }
        if !stubbedGlobals.isEmpty { s.append("inert stubs:   \(stubbedGlobals.joined(separator: ", ")) (referenced by the pickle, never executed)") }
        for w in warnings { s.append("warning: \(w)") }
        if let o = output { s.append("wrote:         \(o)") }
        return s.joined(separator: "\n")
    }
}

extension ImportReport {
    /// One tensor and what became of it (the `--verbose` table).
    static func line(_ t: TensorEntry) -> String {
        let head = "  \(t.source) \(t.dtype)\(t.shape)"
        switch t.status {
        case "renamed": return "\(head) → \(t.name) [\(t.rule ?? "")] used by \(t.usedBy.joined(separator: ", "))"
        case "unused": return "\(head) unused: \(t.reason ?? "")"
        case "alias": return "\(head) alias of \(t.reason ?? "")"
        default: return "\(head) → \(t.usedBy.joined(separator: ", "))"
        }
    }

    /// Without `--verbose`: renames counted per rule (one example each); unused and aliased tensors
    /// listed one by one, except BatchNorm step counters, which every BN checkpoint holds and no
    /// computation reads — those are counted.
    func summaryLines() -> [String] {
        var s: [String] = []
        var byRule: [(rule: String, first: TensorEntry, n: Int)] = []
        for t in tensors where t.status == "renamed" {
            let r = t.rule ?? "renamed"
            if let i = byRule.firstIndex(where: { $0.rule == r }) { byRule[i].n += 1 } else { byRule.append((r, t, 1)) }
        }
        for r in byRule { s.append("  renamed \(r.n) by [\(r.rule)], e.g. \(r.first.source) → \(r.first.name)") }
        let counters = tensors.filter { $0.status == "unused" && $0.source.hasSuffix("num_batches_tracked") }
        if !counters.isEmpty {
            s.append("  unused \(counters.count) BatchNorm step counters (*.num_batches_tracked): training bookkeeping, kept so exports load with strict=True")
        }
        for t in tensors where (t.status == "unused" && !t.source.hasSuffix("num_batches_tracked")) || t.status == "alias" {
            s.append(Self.line(t))
        }
        s.append("  (--verbose lists every tensor)")
        return s
    }

    /// 79,304 style.
    static func count(_ n: Int) -> String {
        var digits = Array(String(n.magnitude))
        var i = digits.count - 3
        while i > 0 { digits.insert(",", at: i); i -= 3 }
        return (n < 0 ? "-" : "") + String(digits)
    }
}
