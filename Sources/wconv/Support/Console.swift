import Foundation
import Wconv

/// Who prints: under data parallelism only rank 0 writes progress, and errors name their rank.
enum Console {
    nonisolated(unsafe) static var rank: Communicator?
    static var quiet: Bool { !(rank?.isRoot ?? true) }
    /// " (rank 1 of 2 (host))" under data parallelism, else "".
    static var tag: String { rank.map { $0.size > 1 ? " (\($0.name))" : "" } ?? "" }
}

/// A log line on stderr (rank 0 only under data parallelism).
func stderrLine(_ s: String) { if !Console.quiet { FileHandle.standardError.write(Data((s + "\n").utf8)) } }

/// A model's file name, as logs and tables show it.
func modelName(_ path: String) -> String { (path as NSString).lastPathComponent }
