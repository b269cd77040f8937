import WconvTensor

/// Recognises what exporters decompose below the opset that has the op, on the canonical nodes:
/// GELU as 0.5·x·(1 + erf(x/√2)) (Gelu exists only from opset 20), LayerNorm as the
/// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add chain (LayerNormalization arrived in opset 17)
/// and hard-swish as x·relu6(x + 3)/6 (HardSwish arrived in opset 14; Paddle2ONNX writes the chain:
/// four passes over the tensor where the fused op is one, or none when a conv's post-op takes it).
/// A pattern is fused only when every intermediate value has no other reader.
extension ONNXBuildContext {
    mutating func fusePatterns() {
        var readers: [String: Int] = [:]
        var readerNodes: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for v in Set(n.inputs) where !v.isEmpty { readerNodes[v, default: []].append(i) }
            for v in n.inputs where !v.isEmpty { readers[v, default: 0] += 1 }
        }
        for o in model.graph.outputs { readers[o.name, default: 0] += 1 }
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs { producer[o] = i } }
        var removed = Set<Int>()
        var replacements: [Int: GraphNode] = [:]

        func scalar(_ name: String) -> Double? {
            guard let t = constants[name], t.numel == 1 else { return nil }
            return t.doubles().first
        }
        func near(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) <= 1e-4 * max(1, abs(b)) } ?? false }
        /// The node producing `v`, when `v` is read only once (by the pattern) and not yet fused.
        func single(_ v: String) -> (Int, GraphNode)? {
            guard readers[v] == 1, let p = producer[v], !removed.contains(p) else { return nil }
            return (p, nodes[p])
        }
        /// The only reader of `v`.
        func reader(_ v: String) -> (Int, GraphNode)? {
            guard readers[v] == 1, let i = readerNodes[v]?.first, !removed.contains(i) else { return nil }
            return (i, nodes[i])
        }
        func other(_ n: GraphNode, _ v: String) -> String? {
            guard n.inputs.count == 2 else { return nil }
            return n.inputs[0] == v ? n.inputs[1] : (n.inputs[1] == v ? n.inputs[0] : nil)
        }

        // GELU: erf(div(x, √2)) → add 1 → two muls with x and 0.5 in either order.
        for (ei, e) in nodes.enumerated() where e.op == .erf && !removed.contains(ei) {
            guard let (di, d) = single(e.inputs[0]), d.op == .div, d.inputs.count == 2, near(scalar(d.inputs[1]), 2.0.squareRoot()) else { continue }
            let x = d.inputs[0]
            guard let (ai, a) = reader(e.outputs[0]), a.op == .add, let one = other(a, e.outputs[0]), near(scalar(one), 1),
                  let (m1i, m1) = reader(a.outputs[0]), m1.op == .mul, let k = other(m1, a.outputs[0]),
                  let (m2i, m2) = reader(m1.outputs[0]), m2.op == .mul, let k2 = other(m2, m1.outputs[0]) else { continue }
            guard (k == x && near(scalar(k2), 0.5)) || (near(scalar(k), 0.5) && k2 == x) else { continue }
            removed.formUnion([di, ei, ai, m1i])
            replacements[m2i] = GraphNode(name: m2.name, op: .gelu, inputs: [x], outputs: m2.outputs, attributes: ["approximate": .string("none")])
        }

        // LayerNorm over the last axis.
        for (mi, mean) in nodes.enumerated() where mean.op == .reduceMean && !removed.contains(mi) {
            guard mean.ints("axes") == [-1], mean.int("keepdims") == 1 else { continue }
            let x = mean.inputs[0]
            guard let (si, sub) = reader(mean.outputs[0]), sub.op == .sub, sub.inputs == [x, mean.outputs[0]] else { continue }
            let d = sub.outputs[0]
            guard readers[d] == 2 else { continue }
            let users = (readerNodes[d] ?? []).filter { !removed.contains($0) }.map { (offset: $0, element: nodes[$0]) }
            guard let (pi, pow) = users.first(where: { $0.element.op == .pow }).map({ ($0.offset, $0.element) }),
                  let (dvi, div) = users.first(where: { $0.element.op == .div }).map({ ($0.offset, $0.element) }),
                  pow.inputs.first == d, pow.inputs.count == 2, near(scalar(pow.inputs[1]), 2), div.inputs.first == d,
                  let (vi, v) = reader(pow.outputs[0]), v.op == .reduceMean, v.ints("axes") == [-1], v.int("keepdims") == 1,
                  let (ei, ae) = reader(v.outputs[0]), ae.op == .add, let epsName = other(ae, v.outputs[0]), let eps = scalar(epsName),
                  let (qi, sq) = reader(ae.outputs[0]), sq.op == .sqrt, div.inputs.count == 2, div.inputs[1] == sq.outputs[0],
                  readers[sq.outputs[0]] == 1,
                  let (gi, mul) = reader(div.outputs[0]), mul.op == .mul, let gamma = other(mul, div.outputs[0]),
                  let g = constants[gamma], g.rank == 1 else { continue }
            var inputs = [x, gamma]
            var last = (gi, mul)
            if let (bi, add) = reader(mul.outputs[0]), add.op == .add, let beta = other(add, mul.outputs[0]),
               let b = constants[beta], b.rank == 1, b.numel == g.numel {
                inputs.append(beta)
                removed.insert(gi)
                last = (bi, add)
            }
            removed.formUnion([mi, si, pi, vi, ei, qi, dvi])
            replacements[last.0] = GraphNode(name: last.1.name, op: .layerNorm, inputs: inputs, outputs: last.1.outputs,
                                             attributes: ["epsilon": .float(eps), "axis": .int(-1)])
        }

        // Hard-swish: div(mul(x, relu6(add(x, 3))), 6), or mul(·, 1/6), the mul's operands in either order.
        for (di, d) in nodes.enumerated() where (d.op == .div || d.op == .mul) && !removed.contains(di) && d.inputs.count == 2 {
            let sixth = d.op == .div ? scalar(d.inputs[1]) == 6 : scalar(d.inputs[1]).map { abs($0 - 1.0 / 6) < 1e-7 } ?? false
            guard sixth, let (mi, m) = single(d.inputs[0]), m.op == .mul, m.inputs.count == 2 else { continue }
            for (xIdx, gateIdx) in [(0, 1), (1, 0)] {
                let x = m.inputs[xIdx]
                guard let (ri, r) = single(m.inputs[gateIdx]), r.op == .relu6, let (ai, a) = single(r.inputs[0]), a.op == .add,
                      let three = other(a, x), scalar(three) == 3 else { continue }
                removed.formUnion([mi, ri, ai])
                replacements[di] = GraphNode(name: d.name, op: .hardSwish, inputs: [x], outputs: d.outputs)
                break
            }
        }

        guard !removed.isEmpty else { return }
        var out: [GraphNode] = []
        out.reserveCapacity(nodes.count)
        for (i, n) in nodes.enumerated() where !removed.contains(i) { out.append(replacements[i] ?? n) }
        nodes = out
    }
}
