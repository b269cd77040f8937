import Foundation
import OrderedCollections
import XCTest
@testable import WconvFormats
import WconvTensor
import WconvTestSupport

/// Paths and expected values of the fixtures written by tools/fixtures/safetensors/gen.py.
enum SafetensorsFixtures {
    static let root = Repo.fixtures
    static let dir = root.appendingPathComponent("safetensors")

    static func path(_ rel: String) -> String { dir.appendingPathComponent(rel).path }

    static let expected: [String: Any] = {
        let data = try! Data(contentsOf: dir.appendingPathComponent("expected.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func section(_ name: String) -> [String: Any] { expected[name] as! [String: Any] }

    /// One expected tensor: dtype rawValue, shape, bytes (hex) and values.
    struct Expected {
        var dtype: DType
        var shape: [Int]
        var bytes: [UInt8]
        var values: [Double]

        init(_ d: [String: Any]) {
            dtype = DType(rawValue: d["dtype"] as! String)!
            shape = d["shape"] as! [Int]
            let hex = Array((d["hex"] as! String).utf8)
            bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
            // Decimal strings (Python repr) parse exactly; Foundation's JSON numbers may not.
            values = (d["values"] as! [String]).map { Double($0)! }
        }

        /// A tensor owning these bytes (built without the reader).
        func tensor() -> Tensor {
            try! Tensor(dtype: dtype, shape: shape, storage: bytes.withUnsafeBytes { Storage(copying: $0) })
        }
    }

    static func tensors(_ section: [String: Any]) -> [String: Expected] {
        (section["tensors"] as! [String: [String: Any]]).mapValues(Expected.init)
    }

    /// A bundle of the expected tensors in the generator's insertion order.
    static func bundle(_ sectionName: String, metadata: [String: String]) -> TensorBundle {
        let s = section(sectionName)
        let t = tensors(s)
        var b = TensorBundle(format: "test")
        for name in s["order"] as! [String] { b.tensors[name] = t[name]!.tensor() }
        b.metadata = metadata
        return b
    }

    static func assertMatches(_ t: Tensor?, _ e: Expected, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let t else { return XCTFail("missing tensor \(name)", file: file, line: line) }
        XCTAssertEqual(t.dtype, e.dtype, name, file: file, line: line)
        XCTAssertEqual(t.shape, e.shape, name, file: file, line: line)
        XCTAssertEqual(t.contiguousByteArray(), e.bytes, "bytes of \(name)", file: file, line: line)
        let got = t.doubles()
        XCTAssertEqual(got.count, e.values.count, name, file: file, line: line)
        for (g, w) in zip(got, e.values) {
            if w.isNaN { XCTAssertTrue(g.isNaN, "\(name): expected NaN, got \(g)", file: file, line: line) }
            else { XCTAssertEqual(g, w, "\(name)", file: file, line: line) }
        }
    }

    static func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }
}
