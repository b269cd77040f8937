import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
import WconvTestSupport

/// Test-only reader for the committed safetensors fixtures (the real reader lives in WconvFormats
/// and is tested there); it keeps these tests independent of that work.
enum Fixtures {
    static let dir = Repo.fixture("models")

    static func manifest() throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
    }

    static func config(_ sub: String) -> JSONValue? {
        ArchitectureRecognizer.configBeside(path: "\(dir)/\(sub)/model.safetensors")
    }

    /// A config object read with Foundation (as the full-size entries are) in the recogniser's form.
    static func config(_ object: Any?) throws -> JSONValue? {
        guard let object else { return nil }
        return try JSONValue.parse(Array(try JSONSerialization.data(withJSONObject: object)), options: .python)
    }

    /// A bundle of zero-stride one-element tensors with the names and shapes of a full-size entry
    /// (`keys`: [name, shape(, dtype)]): recognition and shape inference read shapes only.
    static func shapesOnly(_ entry: [String: Any]) throws -> TensorBundle {
        var b = TensorBundle(format: "pytorch-zip")
        let one = Storage(zeroedByteCount: 8)
        for item in try XCTUnwrap(entry["keys"] as? [[Any]]) {
            let name = try XCTUnwrap(item[0] as? String), shape = try XCTUnwrap(item[1] as? [Int])
            let dtype: DType = item.count > 2 && (item[2] as? String) == "int64" ? .i64 : .f32
            b.tensors[name] = try Tensor(dtype: dtype, shape: shape, strides: shape.map { _ in 0 }, storage: one)
        }
        return b
    }

    /// Reads a safetensors file into a bundle (header order), copying the bytes.
    static func readSafetensors(_ relative: String) throws -> TensorBundle {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + relative))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let headerData = data.subdata(in: 8..<(8 + n))
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: headerData) as? [String: Any])
        var bundle = TensorBundle(format: "safetensors")
        if let meta = header["__metadata__"] as? [String: String] { bundle.metadata = meta }
        var entries: [(String, DType, [Int], Int, Int)] = []
        for (name, v) in header where name != "__metadata__" {
            let d = try XCTUnwrap(v as? [String: Any])
            let dtype = try XCTUnwrap(DType(safetensorsName: try XCTUnwrap(d["dtype"] as? String)))
            let shape = try XCTUnwrap(d["shape"] as? [Int])
            let off = try XCTUnwrap(d["data_offsets"] as? [Int])
            entries.append((name, dtype, shape, off[0], off[1]))
        }
        // Order as the file stores them, then by name for equal offsets (empty tensors).
        entries.sort { ($0.3, $0.0) < ($1.3, $1.0) }
        for (name, dtype, shape, a, b) in entries {
            let bytes = data.subdata(in: (8 + n + a)..<(8 + n + b))
            let storage = bytes.withUnsafeBytes { Storage(copying: $0) }
            bundle.tensors[name] = try Tensor(dtype: dtype, shape: shape, storage: storage)
        }
        return bundle
    }
}
