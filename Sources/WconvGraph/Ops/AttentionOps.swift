import WconvTensor

extension Op {
    /// Multi-head scaled dot-product attention on unsplit projections, as HF BERT computes it.
    /// inputs [q, k, v, mask?]: q [B, Tq, D], k and v [B, Tk, D]; D = heads · dh, head h uses
    /// channels h·dh ..< (h+1)·dh (HF's `view(B, T, heads, dh)`). mask, when present, is additive,
    /// broadcastable to [B, heads, Tq, Tk]. attrs heads (int), scale (float, default 1/sqrt(dh)).
    /// output [B, Tq, D]: for each head, softmax(q·kᵀ·scale + mask, over Tk)·v, heads concatenated back
    /// in the same channel order. attrs dropout (float, default 0): in training, dropout with this
    /// ratio on the probabilities before they weight v (HF's attention_probs_dropout_prob); eval
    /// ignores it.
    public static let attention: Op = "attention"
}

/// Attention (docs/adding-an-op.md).
public enum AttentionOps {
    static let schemas: [OpSchema] = [attention]

    static let attention = OpSchema(.attention, dtype: .input(0)) { a in
        let q = try a.need(0), k = try a.need(1), v = try a.need(2)
        guard q.count == 3, k.count == 3, v.count == 3 else { throw a.fail("q, k, v must be [B, T, D]") }
        guard let heads = a.int("heads"), heads >= 1, q[2] % heads == 0 else {
            throw a.fail("heads \(a.int("heads") ?? 0) must divide the model dim \(q[2])")
        }
        guard k[2] == q[2], v[2] == q[2], k[1] == v[1], k[0] == v[0], k[0] == q[0] || k[0] == 1 else {
            throw a.fail("q, k and v dims do not agree")
        }
        if let m = a.optional(3), ShapeInference.broadcast(m, [q[0], heads, q[1], k[1]]) != [q[0], heads, q[1], k[1]] {
            throw a.fail("mask \(m) does not broadcast to [\(q[0]), \(heads), \(q[1]), \(k[1])]")
        }
        return [q]
    }
}
