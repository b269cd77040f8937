import Foundation

/// Human-readable sizes, counts and tables for the CLI's text output.
enum Fmt {
    /// 1536 → "1.5 KiB"; exact bytes below 1 KiB.
    static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        if u == 0 { return "\(n) B" }
        // One decimal without String(format:), whose first call sets up Foundation's locale
        // formatting (0.45 % of a ResNet-50 convert's `perf` samples).
        let tenths = Int((v * 10).rounded(.toNearestOrEven))
        return "\(tenths / 10).\(tenths % 10) \(units[u])"
    }

    /// 25557032 → "25,557,032".
    static func count(_ n: Int) -> String {
        let s = String(abs(n))
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    /// Compact float for tables.
    static func g(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        return String(format: "%.6g", d)
    }

    /// Milliseconds with sensible precision.
    static func ms(_ seconds: Double) -> String {
        let m = seconds * 1000
        return m < 10 ? String(format: "%.3f ms", m) : String(format: "%.1f ms", m)
    }
}

/// A plain text table: left-aligned text columns, right-aligned numeric columns.
struct TextTable {
    var headers: [String]
    /// Column indices that are right-aligned.
    var rightAligned: Set<Int> = []
    var rows: [[String]] = []

    init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let padding = String(repeating: " ", count: max(0, widths[i] - c.count))
                return rightAligned.contains(i) ? padding + c : (i == cells.count - 1 ? c : c + padding)
            }.joined(separator: "  ")
        }
        var out = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        out += rows.map(line)
        return out.joined(separator: "\n")
    }
}

/// Writes to standard error (logs, progress, warnings; stdout stays clean for `--json`).
func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
