import WconvFormats
import WconvTensor

/// ONNX spellings of the encoder ops opset 17 lacks: `attention` as the ops HF BERT's eager path
/// exports (per-head reshape, MatMul, scale, additive mask, Softmax, MatMul), `arange` as
/// Shape → Gather → Range (position ids that follow the sequence length).
extension ONNXExportContext {
    /// q, k, v [B, T, D] → [B, H, T, dh] (k: [B, H, dh, T]), softmax(q·kᵀ·scale + mask)·v, back to [B, Tq, D].
    mutating func emitAttention(_ n: GraphNode) {
        guard n.inputs.count >= 3, let heads = n.int("heads"), heads >= 1 else {
            problems.append("\(n.name) (attention): needs q, k, v and heads"); return
        }
        guard let d = modelDim(of: n.inputs[0]), d % heads == 0 else {
            problems.append("\(n.name) (attention): the model dim of '\(n.inputs[0])' is not known"); return
        }
        let dh = d / heads, p = n.name
        let split = ints(p + ".split_heads", [0, 0, heads, dh])
        func splitHeads(_ v: String, _ tag: String, perm: [Int]) -> String {
            let r = fresh("\(p)/\(tag)_heads"), t = fresh("\(p)/\(tag)_t")
            add("Reshape", r, [v, split], [r], rank: 4)
            add("Transpose", t, [r], [t], ["perm": .ints(perm)], rank: 4)
            return t
        }
        let q = splitHeads(n.inputs[0], "q", perm: [0, 2, 1, 3]), k = splitHeads(n.inputs[1], "k", perm: [0, 2, 3, 1]), v = splitHeads(n.inputs[2], "v", perm: [0, 2, 1, 3])
        let scores = fresh(p + "/scores"), scaled = fresh(p + "/scaled")
        add("MatMul", scores, [q, k], [scores], rank: 4)
        add("Mul", scaled, [scores, scalar(p + ".scale", n.float("scale") ?? 1 / Double(dh).squareRoot())], [scaled], rank: 4)
        var logits = scaled
        if n.inputs.count > 3, !n.inputs[3].isEmpty {
            logits = fresh(p + "/masked")
            add("Add", logits, [scaled, n.inputs[3]], [logits], rank: 4)
        }
        let probs = fresh(p + "/probs"), ctx = fresh(p + "/context"), merged = fresh(p + "/merged")
        add("Softmax", probs, [logits], [probs], ["axis": .int(-1)], rank: 4)
        add("MatMul", ctx, [probs, v], [ctx], rank: 4)
        add("Transpose", merged, [ctx], [merged], ["perm": .ints([0, 2, 1, 3])], rank: 4)
        add("Reshape", p, [merged, ints(p + ".merge_heads", [0, 0, d])], [n.outputs[0]], rank: 3)
    }

    /// value[i] = start + i·step for i in 0 ..< x.shape[axis]: Range(start, start + n·step, step).
    mutating func emitArange(_ n: GraphNode) {
        let x = n.inputs.first ?? "", start = n.int("start") ?? 0, step = n.int("step") ?? 1
        guard step != 0, let r = rank(x) else { problems.append("\(n.name) (arange): step 0 or unknown input rank has no ONNX Range form"); return }
        let axis = (n.int("axis") ?? 0) < 0 ? (n.int("axis") ?? 0) + r : (n.int("axis") ?? 0)
        guard axis >= 0, axis < r else { problems.append("\(n.name) (arange): axis out of range"); return }
        func int64(_ tag: String, _ v: Int) -> String { constant(n.name + "." + tag, ONNXReader.int64Tensor([v], shape: [])) }
        let shape = fresh(n.name + "/shape"), count = fresh(n.name + "/count")
        add("Shape", shape, [x], [shape], rank: 1)
        add("Gather", count, [shape, int64("axis", axis)], [count], ["axis": .int(0)], rank: 0)
        var limit = count
        if step != 1 { let l = fresh(n.name + "/span"); add("Mul", l, [count, int64("step_factor", step)], [l], rank: 0); limit = l }
        if start != 0 { let l = fresh(n.name + "/limit"); add("Add", l, [limit, int64("offset", start)], [l], rank: 0); limit = l }
        add("Range", n.name, [int64("start", start), limit, int64("step", step)], [n.outputs[0]], rank: 1)
    }

    /// The last dim of `value`: a linear's out features, else from shape inference on probe shapes
    /// (attention's model dim is static; Reshape needs it).
    func modelDim(of value: String) -> Int? {
        if let producer = graph.nodes.first(where: { $0.outputs.contains(value) }), producer.op == .linear,
           producer.inputs.count >= 2, let w = graph.parameters[producer.inputs[1]], w.rank == 2 {
            return w.shape[0]
        }
        return (try? graph.inferShapes(inputShapes: graph.probeInputShapes()))?[value]?.last
    }
}
