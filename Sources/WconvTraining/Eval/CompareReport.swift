import WconvTensor

/// The `wconv compare --report` page: the seed-style table and, per source, the validation
/// curves of every mode (inline SVG, the training report's charts and style).
public enum CompareReport {
    static let colors = ["#8a94a6", "#3b6fd8", "#e8663d", "#2f9e58", "#8e5bd6", "#d6a02b"]

    public static func html(_ runs: [ComparisonRun], title: String, subtitle: String) -> String {
        let multi = runs.first?.metricName == "macroAUC"
        let metricTitle = multi ? "validation macro AUC" : "validation accuracy"
        var s = TrainingReport.page(title: title, subtitle: subtitle)
        let b = Comparison.best(runs)
        s += "<div class=\"panel\"><h2>The comparison (same seed, data and budget)</h2><table><tr><th>source</th><th>strategy</th><th>\(multi ? "val macro AUC" : "val accuracy")</th><th>\(multi ? "label accuracy" : "macro AUC")</th><th>epochs</th><th>best epoch</th><th>time</th></tr>"
        for (i, r) in runs.enumerated() {
            let m = Comparison.figure(r.metric, r.metricName)
            let other = multi ? (r.accuracy.map { fmt($0 * 100, 1) + "%" } ?? "–") : (r.macroAUC.map { fmt($0, 3) } ?? "–")
            s += "<tr\(i == b ? " style=\"background:#eaf6ee;font-weight:650\"" : "")><td>\(TrainingReport.esc(r.source))</td><td>\(r.strategy)</td><td>\(m)\(i == b ? " ★" : "")</td><td>\(other)</td><td>\(r.epochs)\(r.stopped != nil ? " (stopped)" : "")</td><td>\(r.bestEpoch.map(String.init) ?? "–")</td><td>\(fmt(r.seconds, 1)) s</td></tr>"
        }
        s += "</table></div>"
        var sources: [String] = []
        for r in runs where !sources.contains(r.source) { sources.append(r.source) }
        for src in sources {
            let mine = runs.filter { $0.source == src }
            let x = (1...max(1, mine.map(\.history.count).max() ?? 1)).map(Double.init)
            func series(_ f: (EpochRecord) -> Double?) -> [(String, [Double], String)] {
                mine.enumerated().map { k, r in
                    (r.mode.rawValue, x.indices.map { i in i < r.history.count ? (f(r.history[i]) ?? .nan) : .nan }, colors[k % colors.count])
                }
            }
            s += "<div class=\"row\"><div class=\"panel\"><h2>\(TrainingReport.esc(src)): \(metricTitle)</h2>"
            s += TrainingReport.lineChart(x: x, series: series { multi ? $0.valMacroAUC : $0.valAccuracy }, baseline: nil, percent: true) + "</div>"
            s += "<div class=\"panel\"><h2>\(TrainingReport.esc(src)): training loss</h2>"
            s += TrainingReport.lineChart(x: x, series: series { $0.trainLoss }, baseline: nil, percent: false) + "</div></div>"
        }
        return s + "</main></body></html>\n"
    }
}
