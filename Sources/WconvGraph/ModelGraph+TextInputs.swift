import WconvTensor

extension ModelGraph {
    /// Feeds for a text encoder given only `input_ids`: adds `attention_mask` all ones and
    /// `token_type_ids` all zeros where the graph takes them and `feeds` lacks them. Right only for
    /// unpadded single-segment rows; padded batches must pass the tokenizer's mask (the runtime never
    /// fills a missing input by itself). Returns the feeds and the names it filled, for the caller to
    /// report.
    public func unpaddedTextFeeds(_ feeds: [String: Tensor]) -> (feeds: [String: Tensor], filled: [String]) {
        guard let ids = feeds["input_ids"] else { return (feeds, []) }
        var out = feeds, filled: [String] = []
        for (name, value) in [("attention_mask", Float(1)), ("token_type_ids", Float(0))]
        where out[name] == nil && inputs.contains(where: { $0.name == name }) {
            out[name] = Tensor(shape: ids.shape, floats: [Float](repeating: value, count: ids.numel)).converted(to: .i64).tensor
            filled.append(name)
        }
        return (out, filled)
    }
}
