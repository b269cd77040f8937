import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A progress bar on stderr for long work over many bytes. Drawn only when stderr is a terminal
/// and the work is large (design.md §4); otherwise silent, so logs and pipes stay clean.
final class ProgressBar {
    static let threshold = 100_000_000

    private let label: String
    private let total: Int
    private let enabled: Bool
    private var done = 0
    private var lastDrawn = -1
    private let start = DispatchTime.now()

    /// `total` is in bytes; the bar shows only when `total` ≥ 100 MB and stderr is a TTY.
    init(_ label: String, total: Int, force: Bool = false) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = force || (total >= ProgressBar.threshold && isatty(2) != 0)
    }

    func advance(by n: Int) {
        guard enabled else { return }
        done += n
        let permille = min(1000, done * 1000 / total)
        guard permille / 5 != lastDrawn else { return }
        lastDrawn = permille / 5
        let width = 30
        let filled = permille * width / 1000
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "\r%@ [%@] %3d%%  %@ / %@  %.1fs", label, bar, permille / 10,
                          Fmt.bytes(min(done, total)), Fmt.bytes(total), elapsed)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Clears the bar's line.
    func finish() {
        guard enabled, lastDrawn >= 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
