import Foundation

/// Paths inside the repository, for tests that read committed fixtures or run its tools.
public enum Repo {
    /// The repository root (this file is Tests/WconvTestSupport/Repo.swift).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// `fixtures/` (written by the generators in tools/fixtures/).
    public static let fixtures: URL = root.appendingPathComponent("fixtures")

    /// The path of `fixtures/<relative>`.
    public static func fixture(_ relative: String) -> String { fixtures.appendingPathComponent(relative).path }
}
