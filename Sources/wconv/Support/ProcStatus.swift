import Foundation

/// Memory figures of this process from /proc/self/status (Linux), in bytes; 0 where unavailable.
struct ProcStatus {
    var rss = 0, hwm = 0, rssAnon = 0

    static func read() -> ProcStatus {
        var s = ProcStatus()
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return s }
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            switch parts[0] {
            case "VmRSS:": s.rss = kb * 1024
            case "VmHWM:": s.hwm = kb * 1024
            case "RssAnon:": s.rssAnon = kb * 1024
            default: break
            }
        }
        return s
    }
}
