/// Multi-label metrics over per-label probabilities (sigmoid of the logits), with scikit-learn's
/// definitions per label column: ROC AUC as `roc_auc_score`, PR AUC as `average_precision_score`
/// (Σ (Rₙ − Rₙ₋₁)·Pₙ over the distinct thresholds), and precision/recall/F1 of `p ≥ threshold` with
/// zero_division=0. Uncertain (−1) entries are left out of every figure of their label. Macro
/// figures are unweighted means over the labels where they are defined (an AUC needs both classes).
public struct MultiLabelMetrics: Codable, Sendable {
    public var task = "multilabel"
    public var labels: [String]
    public var count: Int
    /// Certain (not −1) entries and positives among them, per label.
    public var evaluated: [Int]
    public var positives: [Int]
    public var auc: [Double?]
    public var macroAUC: Double?
    /// Area under the precision–recall curve (average precision), per label.
    public var prAUC: [Double?]
    public var macroPRAUC: Double?
    /// The decision threshold on the probability of each label, and where it came from.
    public var thresholds: [Double]
    public var thresholdSource: String
    public var precision: [Double]
    public var recall: [Double]
    public var f1: [Double]
    public var macroF1: Double
    /// Fraction of the certain label decisions that are right at the thresholds.
    public var accuracy: Double
    public var loss: Double?

    /// - Parameters:
    ///   - probabilities: N×L row-major.
    ///   - targets: N×L raw labels (1, 0, −1).
    ///   - thresholds: one per label; nil gives 0.5 each.
    public init(probabilities: [Float], targets: [Float], labels: [String], thresholds: [Double]? = nil,
                thresholdSource: String? = nil, loss: Double? = nil) {
        let L = labels.count, N = L == 0 ? 0 : targets.count / L
        precondition(probabilities.count == targets.count && targets.count == N * L, "multi-label metrics: \(probabilities.count) scores, \(targets.count) targets for \(L) labels")
        self.labels = labels
        count = N
        self.loss = loss
        self.thresholds = thresholds ?? [Double](repeating: 0.5, count: L)
        self.thresholdSource = thresholdSource ?? (thresholds == nil ? "default 0.5" : "given")
        var evaluated = [Int](), positives = [Int](), auc = [Double?](), ap = [Double?](), prec = [Double](), rec = [Double](), f1 = [Double]()
        var right = 0, total = 0
        for j in 0..<L {
            let (s, y) = MultiLabelMetrics.column(probabilities, targets, L, j)
            evaluated.append(y.count)
            positives.append(y.filter { $0 }.count)
            auc.append(ClassificationMetrics.rocAUC(scores: s, positive: y))
            ap.append(MultiLabelMetrics.averagePrecision(scores: s, positive: y))
            let c = MultiLabelMetrics.counts(s, y, threshold: self.thresholds[j])
            let p = c.tp + c.fp > 0 ? Double(c.tp) / Double(c.tp + c.fp) : 0
            let r = c.tp + c.fn > 0 ? Double(c.tp) / Double(c.tp + c.fn) : 0
            prec.append(p); rec.append(r); f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
            right += y.count - c.fp - c.fn
            total += y.count
        }
        self.evaluated = evaluated
        self.positives = positives
        self.auc = auc
        self.prAUC = ap
        precision = prec; recall = rec; self.f1 = f1
        func mean(_ v: [Double?]) -> Double? { let d = v.compactMap { $0 }; return d.isEmpty ? nil : d.reduce(0, +) / Double(d.count) }
        macroAUC = mean(auc)
        macroPRAUC = mean(ap)
        macroF1 = L == 0 ? 0 : f1.reduce(0, +) / Double(L)
        accuracy = total == 0 ? 0 : Double(right) / Double(total)
    }

    /// Scores and positives of label `j` over its certain entries.
    static func column(_ p: [Float], _ t: [Float], _ L: Int, _ j: Int) -> ([Float], [Bool]) {
        var s: [Float] = [], y: [Bool] = []
        var k = j
        while k < t.count {
            if t[k] >= 0 { s.append(p[k]); y.append(t[k] > 0) }
            k += L
        }
        return (s, y)
    }

    static func counts(_ s: [Float], _ y: [Bool], threshold: Double) -> (tp: Int, fp: Int, fn: Int) {
        var tp = 0, fp = 0, fn = 0
        for (v, pos) in zip(s, y) {
            let predicted = Double(v) >= threshold
            if predicted && pos { tp += 1 } else if predicted { fp += 1 } else if pos { fn += 1 }
        }
        return (tp, fp, fn)
    }

    /// Walks the distinct scores from high to low: for each, the positives and negatives scored at
    /// or above it, the score, and the next lower score (nil after the last).
    static func sweep(_ s: [Float], _ y: [Bool], _ body: (_ tp: Int, _ fp: Int, _ score: Float, _ next: Float?) -> Void) {
        let order = s.indices.sorted { s[$0] > s[$1] }
        var tp = 0, fp = 0, i = 0
        while i < order.count {
            var j = i
            while j < order.count && s[order[j]] == s[order[i]] {
                if y[order[j]] { tp += 1 } else { fp += 1 }
                j += 1
            }
            body(tp, fp, s[order[i]], j < order.count ? s[order[j]] : nil)
            i = j
        }
    }

    /// sklearn's `average_precision_score`: over the distinct scores from high to low,
    /// Σ (recall_k − recall_{k−1})·precision_k. nil without positives.
    public static func averagePrecision(scores: [Float], positive: [Bool]) -> Double? {
        let P = positive.filter { $0 }.count
        guard P > 0 else { return nil }
        var prevRecall = 0.0, ap = 0.0
        sweep(scores, positive) { tp, fp, _, _ in
            let r = Double(tp) / Double(P)
            ap += (r - prevRecall) * Double(tp) / Double(tp + fp)
            prevRecall = r
        }
        return ap
    }

    /// Per label, the threshold with the best F1 on these data: the midpoint between the lowest
    /// score predicted positive and the next lower score (ties: the highest such threshold).
    /// Labels without a positive get 0.5.
    public static func bestThresholds(probabilities: [Float], targets: [Float], labels L: Int) -> [Double] {
        (0..<L).map { j in
            let (s, y) = column(probabilities, targets, L, j)
            let P = y.filter { $0 }.count
            guard P > 0 else { return 0.5 }
            var best = (f1: -1.0, threshold: 0.5)
            sweep(s, y) { tp, fp, score, next in
                let f1 = 2 * Double(tp) / Double(2 * tp + fp + (P - tp))
                if f1 > best.f1 { best = (f1, next.map { (Double(score) + Double($0)) / 2 } ?? Double(score)) }
            }
            return best.threshold
        }
    }

    /// A plain-text table for the terminal.
    public func table() -> String {
        var s = "multi-label: macro AUC \(macroAUC.map { fmt($0, 4) } ?? "n/a")  macro PR AUC \(macroPRAUC.map { fmt($0, 4) } ?? "n/a")  macro F1 \(fmt(macroF1, 4))  label accuracy \(fmt(accuracy * 100, 2))%"
        if let loss { s += "  loss \(fmt(loss, 4))" }
        s += "  (\(count) samples, \(labels.count) labels; thresholds: \(thresholdSource))\n"
        let w = max(5, labels.map(\.count).max() ?? 5)
        s += "label".padding(toLength: w, withPad: " ", startingAt: 0) + "  positives/n     AUC  PR AUC  threshold  precision  recall      F1\n"
        for j in labels.indices {
            s += labels[j].padding(toLength: w, withPad: " ", startingAt: 0) + pad("\(positives[j])/\(evaluated[j])", 13)
            s += pad(auc[j].map { fmt($0, 4) } ?? "n/a", 8) + pad(prAUC[j].map { fmt($0, 4) } ?? "n/a", 8)
            s += pad(fmt(thresholds[j], 3), 11) + pad(fmt(precision[j], 4), 11) + pad(fmt(recall[j], 4), 8) + pad(fmt(f1[j], 4), 8) + "\n"
        }
        return s
    }
}
