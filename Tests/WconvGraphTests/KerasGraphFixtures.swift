import Foundation
import WconvFormats
import WconvTestSupport

/// fixtures/keras paths and expected values (tools/fixtures/keras/gen.py), parsed with wconv's
/// JSON parser (Foundation's on Linux misrounds some doubles in the last bit).
enum KerasGraphFixtures {
    static let dir = Repo.fixture("keras")
    static func path(_ name: String) -> String { dir + "/" + name }
    static func json(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try data.withUnsafeBytes { try JSONValue.parse($0, what: name, file: nil) }
    }
    static func floats(_ v: JSONValue?) -> [Float] { v?.array?.map { Float($0.double!) } ?? [] }
    static func ints(_ v: JSONValue?) -> [Int] { v?.array?.map { $0.int! } ?? [] }
    /// Where Swift tests leave exported files for tools/interop/check_h5.py.
    static let interopDir = Repo.root.appendingPathComponent(".build/interop/keras").path
}
