import Foundation
import WconvTensor
import WconvTestSupport

/// Paths and expected values of fixtures/onnx (written by tools/fixtures/onnx/gen.py).
enum ONNXFixtures {
    static let root = Repo.fixture("onnx")

    static func path(_ name: String) -> String { root + "/" + name }

    /// Every model that has an expected-values file, as (model path, expected JSON).
    static func modelsWithExpected() throws -> [(path: String, expected: [String: Any])] {
        let fm = FileManager.default
        var out: [(String, [String: Any])] = []
        let candidates = try fm.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".onnx") }.map { root + "/" + $0 }
            + (try fm.contentsOfDirectory(atPath: root + "/external").filter { $0.hasSuffix(".onnx") }.map { root + "/external/" + $0 })
        for p in candidates.sorted() {
            let name = URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent
            let e = root + "/expected/" + name + ".json"
            guard let data = fm.contents(atPath: e) else { continue }
            out.append((p, try JSONSerialization.jsonObject(with: data) as! [String: Any]))
        }
        return out
    }

    /// FNV-1a 64 of bytes, as the generator computes it.
    static func fnv1a64(_ raw: UnsafeRawBufferPointer) -> String {
        var h: UInt64 = 0xCBF29CE484222325
        for b in raw { h = (h ^ UInt64(b)) &* 0x100000001B3 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    static func fnv(_ t: Tensor) -> String { t.withContiguousBytes { fnv1a64($0) } }
}
