/// Classification metrics over predicted class scores, with sklearn's definitions:
/// precision/recall/F1 per class with zero_division=0, one-vs-rest ROC AUC per class computed as
/// roc_auc_score does (trapezoid over distinct thresholds, which equals the Mann–Whitney statistic
/// with tied scores counted one half), macro AUC as the unweighted mean over classes.
public struct ClassificationMetrics: Codable, Sendable {
    public var classes: [String]
    public var count: Int
    public var accuracy: Double
    /// confusion[true][predicted]
    public var confusion: [[Int]]
    public var support: [Int]
    public var perClassAccuracy: [Double?]   // recall of each class (the seed's per-class accuracy)
    public var precision: [Double]
    public var recall: [Double]
    public var f1: [Double]
    /// nil for a class that is absent (or the only class present) in the targets: AUC undefined.
    public var auc: [Double?]
    public var macroAUC: Double?
    public var macroF1: Double
    public var loss: Double?

    /// `scores` is N×C row-major (probabilities or logits: AUC depends on the order only, and
    /// probabilities are what sklearn users pass).
    public init(scores: [Float], targets: [Int], classes: [String], loss: Double? = nil) {
        let C = classes.count, N = targets.count
        precondition(scores.count == N * C, "metrics: \(scores.count) scores for \(N)×\(C)")
        self.classes = classes
        self.count = N
        self.loss = loss
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: C), count: C)
        var correct = 0
        for i in 0..<N {
            var best = 0
            for c in 1..<max(C, 1) where scores[i * C + c] > scores[i * C + best] { best = c }
            let y = targets[i]
            if y >= 0 && y < C { confusion[y][best] += 1 }
            if best == y { correct += 1 }
        }
        self.confusion = confusion
        accuracy = N == 0 ? 0 : Double(correct) / Double(N)
        support = (0..<C).map { c in confusion[c].reduce(0, +) }
        var precision = [Double](), recall = [Double](), f1 = [Double](), perClass = [Double?]()
        for c in 0..<C {
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<C).reduce(0) { $0 + confusion[$1][c] })
            let actual = Double(support[c])
            let p = predicted > 0 ? tp / predicted : 0
            let r = actual > 0 ? tp / actual : 0
            precision.append(p)
            recall.append(r)
            f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
            perClass.append(actual > 0 ? tp / actual : nil)
        }
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.perClassAccuracy = perClass
        macroF1 = C == 0 ? 0 : f1.reduce(0, +) / Double(C)
        var auc = [Double?]()
        var column = [Float](repeating: 0, count: N)
        for c in 0..<C {
            for i in 0..<N { column[i] = scores[i * C + c] }
            auc.append(ClassificationMetrics.rocAUC(scores: column, positive: targets.map { $0 == c }))
        }
        self.auc = auc
        let defined = auc.compactMap { $0 }
        macroAUC = defined.isEmpty || defined.count < C ? (defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count)) : defined.reduce(0, +) / Double(C)
    }

    /// Binary ROC AUC with average ranks for ties (equal to sklearn's trapezoid); nil when one
    /// of the two classes is absent.
    public static func rocAUC(scores: [Float], positive: [Bool]) -> Double? {
        let n = scores.count
        let pos = positive.reduce(0) { $0 + ($1 ? 1 : 0) }, neg = n - pos
        guard pos > 0, neg > 0 else { return nil }
        let order = (0..<n).sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j where positive[order[k]] { rankSum += avg }
            i = j + 1
        }
        return (rankSum - Double(pos) * Double(pos + 1) / 2) / (Double(pos) * Double(neg))
    }

    /// A plain-text table for the terminal.
    public func table() -> String {
        var s = "accuracy \(fmt(accuracy * 100, 2))%  macro F1 \(fmt(macroF1, 4))  macro AUC \(macroAUC.map { fmt($0, 4) } ?? "n/a")"
        if let loss { s += "  loss \(fmt(loss, 4))" }
        s += "  (\(count) samples)\n"
        let w = max(5, classes.map(\.count).max() ?? 5)
        s += "class".padding(toLength: w, withPad: " ", startingAt: 0) + "  support  accuracy  precision  recall      F1     AUC\n"
        for c in classes.indices {
            s += classes[c].padding(toLength: w, withPad: " ", startingAt: 0)
            s += pad(String(support[c]), 9) + pad(perClassAccuracy[c].map { fmt($0 * 100, 1) + "%" } ?? "-", 10)
            s += pad(fmt(precision[c], 4), 11) + pad(fmt(recall[c], 4), 8) + pad(fmt(f1[c], 4), 8)
            s += pad(auc[c].map { fmt($0, 4) } ?? "n/a", 8) + "\n"
        }
        s += "confusion (rows: true, columns: predicted)\n"
        for c in classes.indices {
            s += classes[c].padding(toLength: w, withPad: " ", startingAt: 0) + confusion[c].map { pad(String($0), 6) }.joined() + "\n"
        }
        return s
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

/// Fixed-point formatting without Foundation's locale dependence.
public func fmt(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let neg = x < 0
    let r = (abs(x) * p).rounded()
    guard r < 9e15 else { return String(x) }
    let ip = Int(r) / Int(p), fp = Int(r) % Int(p)
    var f = String(fp)
    while f.count < digits { f = "0" + f }
    return (neg && r != 0 ? "-" : "") + String(ip) + (digits > 0 ? "." + f : "")
}
