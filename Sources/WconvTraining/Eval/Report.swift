import Foundation
import WconvTensor

/// The training report (`--report report.html`): one self-contained HTML file with inline SVG —
/// loss and accuracy curves, the confusion matrix, per-class bars, the plan and the figures.
public enum TrainingReport {
    public static func html(result: TrainingResult, plan: TrainingPlan, title: String, trainCount: Int, valCount: Int?, wallSeconds: Double) -> String {
        let h = result.history
        var s = page(title: title, subtitle: "\(plan.modelName) · mode \(plan.config.mode.rawValue) · \(plan.classes.count) \(plan.multiLabel ? "labels (multi-label)" : "classes") · \(trainCount) training / \(valCount.map(String.init) ?? "no") validation \(plan.config.text ? "texts" : "images") · seed \(plan.config.seed)")
        if let stop = result.stopped { s += "<div class=\"stop\"><b>\(result.guardTripped ? "Guard rail" : "Stopped"):</b> \(esc(stop))\(result.kept.map { "<br>Kept: " + esc($0) } ?? "")</div>" }
        // Figure cards.
        var cards: [(String, String)] = []
        if let m = result.metrics {
            cards.append(("val accuracy", fmt(m.accuracy * 100, 1) + "%"))
            if let a = m.macroAUC { cards.append(("macro AUC", fmt(a, 3))) }
            cards.append(("macro F1", fmt(m.macroF1, 3)))
        }
        if let m = result.multiLabelMetrics { cards += multiLabelCards(m) }
        if let b = result.baselineAccuracy { cards.append(("feature-extract baseline", fmt(b * 100, 1) + "%")) }
        cards.append(("epochs", "\(h.count)\(result.bestEpoch.map { $0 < 0 ? " (best: the baseline)" : " (best \($0 + 1))" } ?? "")"))
        if !h.isEmpty { cards.append((plan.config.text ? "texts / s" : "images / s", String(Int(h.map(\.imagesPerSecond).reduce(0, +) / Double(h.count))))) }
        cards.append(("wall time", Trainer.duration(wallSeconds)))
        for m in result.mmd { cards.append(("MMD \(m.kind.rawValue)", fmt(m.before, 4) + " → " + fmt(m.after, 4))) }
        s += "<div class=\"cards\">" + cards.map { "<div class=\"card\"><div class=\"v\">\(esc($0.1))</div><div class=\"l\">\(esc($0.0))</div></div>" }.joined() + "</div>"
        // Curves.
        let ep = h.map { Double($0.epoch) }
        s += "<div class=\"row\"><div class=\"panel\"><h2>Loss</h2>" + lineChart(x: ep, series: [("train", h.map(\.trainLoss), "#3b6fd8"), ("validation", h.map { $0.valLoss ?? .nan }, "#e8663d")], baseline: nil, percent: false) + "</div>"
        let ml = plan.multiLabel
        s += "<div class=\"panel\"><h2>\(ml ? "Label accuracy and validation macro AUC" : "Accuracy")</h2>" + lineChart(x: ep, series: [("train", h.map(\.trainAccuracy), "#3b6fd8"), ("validation", h.map { $0.valAccuracy ?? .nan }, "#e8663d")]
            + (ml ? [("val AUC", h.map { $0.valMacroAUC ?? .nan }, "#8e5bd6")] : []), baseline: result.baselineAccuracy, percent: true) + "</div></div>"
        if let m = result.multiLabelMetrics { s += multiLabelPanels(m) }
        if let m = result.metrics {
            s += "<div class=\"row\"><div class=\"panel\"><h2>Confusion matrix (rows: true class, columns: predicted)</h2>" + confusion(m) + "</div>"
            s += "<div class=\"panel\"><h2>Per class</h2>" + perClassBars(m) + "</div></div>"
            s += "<div class=\"panel\"><h2>Per-class figures</h2><table><tr><th>class</th><th>support</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th><th>AUC</th></tr>"
            for c in m.classes.indices {
                s += "<tr><td>\(esc(m.classes[c]))</td><td>\(m.support[c])</td><td>\(m.perClassAccuracy[c].map { fmt($0 * 100, 1) + "%" } ?? "–")</td><td>\(fmt(m.precision[c], 3))</td><td>\(fmt(m.recall[c], 3))</td><td>\(fmt(m.f1[c], 3))</td><td>\(m.auc[c].map { fmt($0, 3) } ?? "–")</td></tr>"
            }
            s += "</table></div>"
        }
        s += "<div class=\"panel\"><h2>Epochs</h2><table><tr><th>epoch</th><th>trainable groups</th><th>lr (head)</th><th>train loss</th><th>train acc</th><th>val loss</th><th>val acc</th><th>AUC</th><th>img/s</th><th>seconds</th></tr>"
        for r in h {
            s += "<tr><td>\(r.epoch)</td><td>\(r.trainableGroups.count)\(r.cached ? " (cached)" : "")</td><td>\(sci(r.headLR))</td><td>\(fmt(r.trainLoss, 4))</td><td>\(fmt(r.trainAccuracy * 100, 1))%</td><td>\(r.valLoss.map { fmt($0, 4) } ?? "–")</td><td>\(r.valAccuracy.map { fmt($0 * 100, 1) + "%" } ?? "–")</td><td>\(r.valMacroAUC.map { fmt($0, 3) } ?? "–")</td><td>\(Int(r.imagesPerSecond))</td><td>\(fmt(r.seconds, 1))</td></tr>"
        }
        s += "</table></div>"
        if !plan.warnings.isEmpty { s += "<div class=\"panel\"><h2>Guard rails</h2>" + plan.warnings.map { "<div class=\"warn\">\(esc($0))</div>" }.joined() + "</div>" }
        s += "<div class=\"panel\"><h2>Plan</h2><pre>\(esc(plan.render()))</pre></div>"
        s += "</main></body></html>\n"
        return s
    }

    /// The page's head, style and header, up to the opened `<main>`.
    static func page(title: String, subtitle: String) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>\(esc(title))</title><style>
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
        header{background:#1d2b44;color:#fff;padding:22px 36px}header h1{margin:0;font-size:22px;font-weight:600}
        header p{margin:6px 0 0;color:#b8c4d8;font-size:14px}main{padding:24px 36px;max-width:1180px}
        .cards{display:flex;flex-wrap:wrap;gap:14px;margin-bottom:22px}.card{background:#fff;border-radius:10px;padding:14px 18px;min-width:150px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
        .card .v{font-size:26px;font-weight:650}.card .l{font-size:12px;color:#667085;text-transform:uppercase;letter-spacing:.04em}
        .row{display:flex;flex-wrap:wrap;gap:18px}.panel{background:#fff;border-radius:10px;padding:16px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:18px}
        .panel h2{font-size:15px;margin:0 0 10px;color:#344054}pre{font-size:12px;background:#f8f9fb;padding:12px;border-radius:8px;overflow-x:auto}
        table{border-collapse:collapse;font-size:13px}td,th{padding:4px 10px;text-align:right;border-bottom:1px solid #eef0f3}th{color:#667085;font-weight:600}
        td:first-child,th:first-child{text-align:left}.warn{background:#fff6e5;border-left:4px solid #f0a500;padding:8px 12px;margin:6px 0;font-size:13px;border-radius:4px}
        .stop{background:#fdecec;border-left:4px solid #d92d20;padding:8px 12px;margin:6px 0;font-size:14px;border-radius:4px}
        svg text{font-family:inherit}
        </style></head><body><header><h1>\(esc(title))</h1>
        <p>\(esc(subtitle))</p></header><main>
        """
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func lineChart(x: [Double], series: [(String, [Double], String)], baseline: Double?, percent: Bool) -> String {
        let W = 520.0, H = 260.0, l = 52.0, r = 16.0, t = 14.0, b = 40.0
        var ys = series.flatMap { $0.1 }.filter { $0.isFinite }
        if let bl = baseline { ys.append(bl) }
        guard !x.isEmpty, var lo = ys.min(), var hi = ys.max() else { return "<p>no epochs</p>" }
        if percent { lo = max(0, lo - 0.05); hi = min(1, hi + 0.05) } else { lo = max(0, lo - (hi - lo) * 0.1); hi += (hi - lo) * 0.1 }
        if hi - lo < 1e-9 { hi = lo + 1 }
        let x0 = x.first!, x1 = max(x.last!, x0 + 1)
        func px(_ v: Double) -> Double { l + (v - x0) / (x1 - x0) * (W - l - r) }
        func py(_ v: Double) -> Double { t + (1 - (v - lo) / (hi - lo)) * (H - t - b) }
        var s = "<svg width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\">"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4, y = py(v)
            s += "<line x1=\"\(l)\" x2=\"\(W - r)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#eceef2\"/><text x=\"\(l - 6)\" y=\"\(y + 4)\" font-size=\"11\" text-anchor=\"end\" fill=\"#667085\">\(percent ? fmt(v * 100, 0) + "%" : fmt(v, 2))</text>"
        }
        let step = max(1, x.count / 10)
        for (i, v) in x.enumerated() where i % step == 0 || i == x.count - 1 {
            s += "<text x=\"\(px(v))\" y=\"\(H - b + 16)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#667085\">\(Int(v))</text>"
        }
        s += "<text x=\"\((l + W - r) / 2)\" y=\"\(H - 6)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#667085\">epoch</text>"
        if let bl = baseline {
            s += "<line x1=\"\(l)\" x2=\"\(W - r)\" y1=\"\(py(bl))\" y2=\"\(py(bl))\" stroke=\"#8a94a6\" stroke-dasharray=\"5 4\"/><text x=\"\(W - r - 4)\" y=\"\(py(bl) - 5)\" font-size=\"11\" text-anchor=\"end\" fill=\"#8a94a6\">feature-extract baseline</text>"
        }
        for (k, (name, ys, color)) in series.enumerated() {
            let pts = zip(x, ys).filter { $0.1.isFinite }
            guard !pts.isEmpty else { continue }
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.2\" points=\"" + pts.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ") + "\"/>"
            for p in pts { s += "<circle cx=\"\(px(p.0))\" cy=\"\(py(p.1))\" r=\"3\" fill=\"\(color)\"/>" }
            s += "<rect x=\"\(l + 10 + Double(k) * 110)\" y=\"\(t + 2)\" width=\"12\" height=\"4\" fill=\"\(color)\"/><text x=\"\(l + 26 + Double(k) * 110)\" y=\"\(t + 8)\" font-size=\"12\" fill=\"#344054\">\(name)</text>"
        }
        return s + "</svg>"
    }

    static func confusion(_ m: ClassificationMetrics) -> String {
        let n = m.classes.count
        let cell = max(22.0, min(48.0, 420.0 / Double(max(n, 1))))
        let labelW = max(48.0, min(140.0, Double(m.classes.map(\.count).max() ?? 4) * 7 + 16))
        let W = labelW + cell * Double(n) + 10, H = labelW + cell * Double(n) + 10
        var s = "<svg width=\"\(Int(W))\" height=\"\(Int(H))\">"
        for i in 0..<n {
            let rowSum = max(1, m.confusion[i].reduce(0, +))
            for j in 0..<n {
                let v = m.confusion[i][j], f = Double(v) / Double(rowSum)
                let color = i == j ? "rgba(47,158,88,\(0.12 + 0.88 * f))" : "rgba(217,45,32,\(f < 1e-9 ? 0.03 : 0.12 + 0.88 * f))"
                let x = labelW + cell * Double(j), y = labelW + cell * Double(i)
                s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" rx=\"3\" fill=\"\(color)\"/>"
                if cell >= 22 { s += "<text x=\"\(x + cell / 2 - 1)\" y=\"\(y + cell / 2 + 4)\" font-size=\"\(cell >= 34 ? 12 : 10)\" text-anchor=\"middle\" fill=\"\(f > 0.55 ? "#fff" : "#1d2330")\">\(v)</text>" }
            }
            let name = esc(String(m.classes[i].prefix(18)))
            s += "<text x=\"\(labelW - 6)\" y=\"\(labelW + cell * Double(i) + cell / 2 + 4)\" font-size=\"11\" text-anchor=\"end\" fill=\"#344054\">\(name)</text>"
            let cx = labelW + cell * Double(i) + cell / 2
            s += "<text transform=\"translate(\(cx + 4),\(labelW - 6)) rotate(-55)\" font-size=\"11\" fill=\"#344054\">\(name)</text>"
        }
        return s + "</svg>"
    }

    static func perClassBars(_ m: ClassificationMetrics) -> String {
        bars(names: m.classes, series: [("precision", m.precision, "#3b6fd8"), ("recall", m.recall, "#e8663d"), ("F1", m.f1, "#2f9e58"), ("AUC", m.auc.map { $0 ?? .nan }, "#8e5bd6")])
    }

    /// Grouped bars in [0, 1]: one group per name, one bar per series (NaN: no bar).
    static func bars(names: [String], series: [(String, [Double], String)]) -> String {
        let n = names.count
        let group = Double(series.count) * 11.0 + 14, l = 40.0, t = 24.0, b = 56.0, H = 260.0
        let W = l + group * Double(n) + 20
        var s = "<svg width=\"\(Int(max(W, 400)))\" height=\"\(Int(H))\">"
        let ph = H - t - b
        for k in 0...4 {
            let y = t + ph * (1 - Double(k) / 4)
            s += "<line x1=\"\(l)\" x2=\"\(max(W, 400) - 10)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#eceef2\"/><text x=\"\(l - 6)\" y=\"\(y + 4)\" font-size=\"11\" text-anchor=\"end\" fill=\"#667085\">\(fmt(Double(k) / 4, 2))</text>"
        }
        for c in 0..<n {
            for (k, (_, vals, color)) in series.enumerated() {
                let v = vals[c]
                guard v.isFinite else { continue }
                let x = l + 7 + group * Double(c) + 11 * Double(k)
                s += "<rect x=\"\(x)\" y=\"\(t + ph * (1 - v))\" width=\"9\" height=\"\(ph * v)\" fill=\"\(color)\" rx=\"1.5\"/>"
            }
            s += "<text transform=\"translate(\(l + group * Double(c) + group / 2),\(H - b + 14)) rotate(-30)\" font-size=\"11\" text-anchor=\"end\" fill=\"#344054\">\(esc(String(names[c].prefix(16))))</text>"
        }
        for (k, (name, _, color)) in series.enumerated() {
            s += "<rect x=\"\(l + Double(k) * 86)\" y=\"6\" width=\"12\" height=\"8\" fill=\"\(color)\"/><text x=\"\(l + 16 + Double(k) * 86)\" y=\"14\" font-size=\"12\" fill=\"#344054\">\(name)</text>"
        }
        return s + "</svg>"
    }

    /// Writes the report atomically.
    public static func write(_ html: String, to path: String) throws {
        let w = try AtomicFileWriter(path: path)
        try w.write(html)
        try w.commit()
    }
}
