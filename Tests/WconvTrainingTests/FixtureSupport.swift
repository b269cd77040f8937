import Foundation
import XCTest
import WconvTestSupport

/// Fixtures live in fixtures/training/ at the repository root, found relative to this file.
enum Fixture {
    static let root: URL = Repo.fixtures.appendingPathComponent("training")

    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    static func json(_ name: String) throws -> Any {
        let data = try Data(contentsOf: root.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data)
    }
}

func doubles(_ any: Any?) -> [Double] { (any as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
func floats(_ any: Any?) -> [Float] { doubles(any).map { Float($0) } }
func ints(_ any: Any?) -> [Int] { (any as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? -1 } }

/// Max |a−b| relative to max(|b|) over the tensor (norm-wise relative error).
func relErr(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    let scale = max(b.map { abs($0) }.max() ?? 0, 1e-12)
    return zip(a, b).map { abs(Double($0) - $1) }.max().map { $0 / scale } ?? 0
}
