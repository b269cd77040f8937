import Foundation
import WconvTensor
import WconvFormats
import WconvTestSupport

/// Paths and expected values of fixtures/keras (written by tools/fixtures/keras/gen.py).
enum KerasFixtures {
    static let dir = Repo.fixture("keras")

    static func path(_ name: String) -> String { dir + "/" + name }

    /// `<name>.expected.json`, parsed with wconv's JSON parser: Foundation's on Linux rounds some
    /// doubles wrongly in the last bit, which exact comparisons would see.
    static func expected(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name + ".expected.json")))
        return try data.withUnsafeBytes { try JSONValue.parse($0, what: name, file: nil) }
    }

    struct ExpectedTensor {
        var shape: [Int]
        var values: [Double]
        var dtype: String
        var ints: [Int64]?
    }

    static func tensors(_ obj: JSONValue?) -> [String: ExpectedTensor] {
        var out: [String: ExpectedTensor] = [:]
        for (k, d) in obj?.object ?? [:] {
            out[k] = ExpectedTensor(shape: d["shape"]!.array!.map { $0.int! },
                                    values: d["values"]!.array!.map { $0.double! },
                                    dtype: d["dtype"]?.string ?? "float32",
                                    ints: d["ints"]?.array?.map { Int64($0.int!) })
        }
        return out
    }

    static func doubles(_ v: JSONValue?) -> [Double] { v?.array?.map { $0.double! } ?? [] }
    static func ints(_ v: JSONValue?) -> [Int] { v?.array?.map { $0.int! } ?? [] }
}
