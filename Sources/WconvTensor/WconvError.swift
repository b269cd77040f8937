/// The one error type every wconv layer throws. The CLI maps `kind` to the exit code
/// (design.md §4); `message` must name the file, tensor or op, the offset or shapes
/// involved, and what to do.
public struct WconvError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// Bad command-line usage (exit 2).
        case usage
        /// Input refused as invalid, corrupt or unsupported (exit 3).
        case invalidInput
        /// Input refused as unsafe, e.g. a pickle reaching for code execution (exit 3).
        case unsafe
        /// Anything that failed while doing the work (exit 1).
        case runtime
        /// A verification or diff found a difference (exit 4).
        case difference
    }

    public var kind: Kind
    public var message: String
    /// The file the error concerns, when there is one.
    public var file: String?

    public init(_ kind: Kind, _ message: String, file: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
    }

    public var exitCode: Int32 {
        switch kind {
        case .usage: return 2
        case .invalidInput, .unsafe: return 3
        case .runtime: return 1
        case .difference: return 4
        }
    }

    public var description: String {
        if let file { return "\(file): \(message)" }
        return message
    }

    /// Shorthand for `.invalidInput` errors.
    public static func invalid(_ message: String, file: String? = nil) -> WconvError {
        WconvError(.invalidInput, message, file: file)
    }

    /// Returns a copy that names `file` if it did not already name one.
    public func inFile(_ path: String) -> WconvError {
        var e = self
        if e.file == nil { e.file = path }
        return e
    }
}
