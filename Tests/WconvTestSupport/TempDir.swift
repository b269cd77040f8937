import Foundation

/// A fresh directory in the system's temporary folder, removed with everything in it when the
/// value is released (keep it in a local for the test's duration). Should creating it fail, the
/// first write into it fails and says so.
public final class TempDir {
    public let url: URL
    public var path: String { url.path }

    /// Creates `<tmp>/wconv-<label>-<uuid>`.
    public init(_ label: String = "test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("wconv-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the directory.
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `bytes` to `name` inside the directory; returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = file(name)
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @discardableResult
    public func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }

    deinit { try? FileManager.default.removeItem(at: url) }
}
