import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats
import WconvTestSupport

/// Fixture access and expected-value checks for the PyTorch tests (fixtures/pytorch, written by
/// tools/fixtures/pytorch/gen.py). Namespaced to stay clear of other format tests in this target.
enum PTFixtures {
    static let dir = Repo.fixture("pytorch")

    static func path(_ name: String) -> String { dir + "/" + name }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Compares every tensor of `bundle` with the expected JSON: names in order, dtype, shape,
    /// SHA-256 of the C-order bytes, and the first values.
    static func check(_ bundle: TensorBundle, against expected: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        let tensors = expected["tensors"] as! [[String: Any]]
        XCTAssertEqual(Array(bundle.tensors.keys), tensors.map { $0["name"] as! String }, "tensor names/order", file: file, line: line)
        for e in tensors {
            let name = e["name"] as! String
            guard let t = bundle.tensors[name] else { XCTFail("missing \(name)", file: file, line: line); continue }
            XCTAssertEqual(t.dtype.rawValue, e["dtype"] as! String, "\(name) dtype", file: file, line: line)
            XCTAssertEqual(t.shape, e["shape"] as! [Int], "\(name) shape", file: file, line: line)
            XCTAssertEqual(SHA256.hex(of: t.contiguousByteArray()), e["sha256"] as! String, "\(name) bytes", file: file, line: line)
            let values = t.doubles()
            for (i, v) in (e["values"] as! [Any]).enumerated() {
                guard i < values.count else { XCTFail("\(name) has fewer values", file: file, line: line); break }
                let got = values[i]
                guard let text = v as? String, let want = Double(text) else { XCTFail("bad expected value \(v)", file: file, line: line); continue }
                if want.isNaN { XCTAssertTrue(got.isNaN, "\(name)[\(i)] = \(got), expected nan", file: file, line: line) }
                else { XCTAssertEqual(got, want, "\(name)[\(i)]", file: file, line: line) }
            }
        }
        if let fmt = expected["format"] as? String {
            XCTAssertEqual(bundle.format, fmt, "format", file: file, line: line)
        }
    }
}
