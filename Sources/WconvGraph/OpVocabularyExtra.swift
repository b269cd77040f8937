/// Ops beyond the core vocabulary that the architecture recognisers emit (transformer pieces).
/// Same conventions as OpVocabulary.swift; the runtime implements exactly these semantics.
extension Op {
    /// Integer ramp over one axis of `x`: output i64, shape [x.shape[axis]], value[i] = start + i·step.
    /// inputs [x] (only its shape is read); attrs axis (int, negative counts from the end),
    /// start (int, default 0), step (int, default 1). BERT uses it for position ids (start 0, step 1)
    /// and for all-zero token-type ids (step 0).
    public static let arange: Op = "arange"

    /// ONNX Slice with constant bounds. inputs [x]; attrs starts, ends, axes (default 0..<count),
    /// steps (default 1). Negative starts/ends count from the end; ends are clamped to the dim, so
    /// Int.max-like values mean "to the end". Steps must be positive here.
    public static let slice: Op = "slice"

    /// Multi-head scaled dot-product attention on unsplit projections, as HF BERT computes it.
    /// inputs [q, k, v, mask?]: q [B, Tq, D], k and v [B, Tk, D]; D = heads · dh, head h uses
    /// channels h·dh ..< (h+1)·dh (HF's `view(B, T, heads, dh)`). mask, when present, is additive,
    /// broadcastable to [B, heads, Tq, Tk]. attrs heads (int), scale (float, default 1/sqrt(dh)).
    /// output [B, Tq, D]: for each head, softmax(q·kᵀ·scale + mask, over Tk)·v, heads concatenated back
    /// in the same channel order. Dropout on the probabilities is omitted (eval semantics).
    public static let attention: Op = "attention"
}
