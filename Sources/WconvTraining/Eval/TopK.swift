#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import WconvTensor

/// One of a row's k best classes: its index, its label when the model has one, its probability
/// and its logit.
public struct TopEntry: Sendable, Equatable {
    public var index: Int
    public var label: String?
    public var probability: Double
    public var logit: Double
}

/// The k best classes of each row of a classifier's [N, classes] output (`wconv run`).
public enum TopK {
    /// Softmax probabilities over each row (per-label sigmoids when `sigmoid`, for a multi-label
    /// model), the k largest logits first.
    public static func rows(_ logits: Tensor, k: Int, labels: [String]?, sigmoid: Bool = false) -> [[TopEntry]] {
        let v = logits.floats()
        let n = logits.shape[0], c = logits.shape[1]
        return (0..<n).map { r in
            let row = (0..<c).map { Double(v[r * c + $0]) }
            let mx = row.max() ?? 0
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            return row.indices.sorted { row[$0] > row[$1] }.prefix(k).map { i in
                TopEntry(index: i, label: labels.flatMap { i < $0.count ? $0[i] : nil },
                         probability: sigmoid ? 1 / (1 + exp(-row[i])) : exp(row[i] - mx) / sum, logit: row[i])
            }
        }
    }
}
