/// The multi-label parts of the training report: figure cards, per-label bars and table.
extension TrainingReport {
    static func multiLabelCards(_ m: MultiLabelMetrics) -> [(String, String)] {
        var c: [(String, String)] = []
        if let a = m.macroAUC { c.append(("val macro AUC", fmt(a, 3))) }
        if let a = m.macroPRAUC { c.append(("val macro PR AUC", fmt(a, 3))) }
        c.append(("val macro F1", fmt(m.macroF1, 3)))
        c.append(("label accuracy", fmt(m.accuracy * 100, 1) + "%"))
        return c
    }

    static func multiLabelPanels(_ m: MultiLabelMetrics) -> String {
        let n = m.labels.count
        var s = "<div class=\"panel\"><h2>Per label (validation; F1 at each label's threshold)</h2>"
        s += bars(names: m.labels, series: [("ROC AUC", m.auc.map { $0 ?? .nan }, "#8e5bd6"), ("PR AUC", m.prAUC.map { $0 ?? .nan }, "#3b6fd8"),
                                             ("F1", m.f1, "#2f9e58"), ("threshold", m.thresholds.map { min(max($0, 0), 1) }, "#8a94a6")]) + "</div>"
        s += "<div class=\"panel\"><h2>Per-label figures</h2><table><tr><th>label</th><th>positives / n</th><th>ROC AUC</th><th>PR AUC</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th></tr>"
        for j in 0..<n {
            s += "<tr><td>\(esc(m.labels[j]))</td><td>\(m.positives[j]) / \(m.evaluated[j])</td><td>\(m.auc[j].map { fmt($0, 3) } ?? "–")</td><td>\(m.prAUC[j].map { fmt($0, 3) } ?? "–")</td><td>\(fmt(m.thresholds[j], 3))</td><td>\(fmt(m.precision[j], 3))</td><td>\(fmt(m.recall[j], 3))</td><td>\(fmt(m.f1[j], 3))</td></tr>"
        }
        return s + "</table></div>"
    }
}
