import Foundation
import OrderedCollections
import WconvTensor

/// A minimal safetensors writer/reader for f32 tensors and string metadata, used for training
/// checkpoints (model, optimizer state, and the run state in `__metadata__`). Written atomically.
public enum SafetensorsLite {
    public static func write(_ tensors: OrderedDictionary<String, Tensor>, metadata: [String: String], to path: String) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        var order: [(String, Tensor)] = []
        for (name, t) in tensors {
            let f = t.dtype == .f32 ? t.contiguous() : t.converted(to: .f32).tensor
            header[name] = ["dtype": "F32", "shape": f.shape, "data_offsets": [offset, offset + f.byteCount]]
            offset += f.byteCount
            order.append((name, f))
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        let w = try AtomicFileWriter(path: path)
        var len = UInt64(json.count).littleEndian
        try withUnsafeBytes(of: &len) { try w.write($0) }
        try json.withUnsafeBytes { try w.write($0) }
        for (_, t) in order { try t.withContiguousBytes { try w.write($0) } }
        try w.commit()
    }

    public static func read(path: String) throws -> (tensors: OrderedDictionary<String, Tensor>, metadata: [String: String]) {
        let file = try MappedFile(path: path)
        let b = file.buffer
        guard b.count >= 8 else { throw WconvError(.invalidInput, "checkpoint too short (\(b.count) bytes)", file: path) }
        var n: UInt64 = 0
        withUnsafeMutableBytes(of: &n) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[0..<8])) }
        let raw = UInt64(littleEndian: n)
        guard raw <= UInt64(b.count - 8) else { throw WconvError(.invalidInput, "checkpoint header of \(raw) bytes runs past the end (\(b.count) bytes)", file: path) }
        let hlen = Int(raw)
        guard let header = try JSONSerialization.jsonObject(with: Data(b[8..<(8 + hlen)])) as? [String: Any] else {
            throw WconvError(.invalidInput, "checkpoint header is not a JSON object", file: path)
        }
        let dataStart = 8 + hlen
        var entries: [(String, Int, Int, [Int])] = []
        for (k, v) in header where k != "__metadata__" {
            guard let d = v as? [String: Any], d["dtype"] as? String == "F32", let sh = d["shape"] as? [Int], let off = d["data_offsets"] as? [Int], off.count == 2,
                  off[0] >= 0, off[1] >= off[0], off[1] <= b.count - dataStart else {
                throw WconvError(.invalidInput, "checkpoint entry '\(k)' is malformed", file: path)
            }
            entries.append((k, off[0], off[1], sh))
        }
        entries.sort { $0.1 < $1.1 }
        var out = OrderedDictionary<String, Tensor>()
        for (k, s, e, sh) in entries {
            let storage = Storage(copying: UnsafeRawBufferPointer(rebasing: b[(dataStart + s)..<(dataStart + e)]))
            out[k] = try Tensor(dtype: .f32, shape: sh, storage: storage)
        }
        return (out, header["__metadata__"] as? [String: String] ?? [:])
    }
}
