import WconvTensor

/// The safetensors dtype strings in the reference enum order (formats doc §5.1). The order matters:
/// the reference writer sorts tensors by dtype descending in this order, then by name.
enum SafetensorsDType {
    /// (name, bits per element) in enum order.
    static let all: [(name: String, bits: Int)] = [
        ("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8), ("F8_E5M2", 8),
        ("F8_E4M3", 8), ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16),
        ("F16", 16), ("BF16", 16), ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64),
        ("I64", 64), ("U64", 64),
    ]
    static let index: [String: Int] = {
        var d: [String: Int] = [:]
        for (i, e) in all.enumerated() { d[e.name] = i }
        return d
    }()

    /// Rank of a wconv dtype in the reference enum order.
    static func rank(_ d: DType) -> Int { index[d.safetensorsName] ?? 0 }
}

/// One tensor entry of a validated header. Offsets are relative to the data section.
struct SafetensorsEntry {
    var name: String
    var dtype: DType
    var shape: [Int]
    var begin: Int
    var end: Int
}

/// A parsed and validated safetensors header.
struct SafetensorsHeader {
    /// Entries in the order the header lists them.
    var entries: [SafetensorsEntry]
    /// `__metadata__` (string → string), in header order.
    var metadata: [(String, String)]
    /// Byte offset of the data section from the start of the file (8 + N).
    var dataStart: Int

    /// The reference's `MAX_HEADER_SIZE`.
    static let maxHeaderSize = 100_000_000

    /// Parses and validates a whole file image, exactly as the reference `read_metadata`/`validate`
    /// do, and additionally refuses duplicate names. `file` names the file in messages.
    static func parse(_ buf: UnsafeRawBufferPointer, file: String) throws -> SafetensorsHeader {
        func bad(_ msg: String) -> WconvError { WconvError(.invalidInput, msg, file: file) }
        guard buf.count >= 8 else {
            throw bad("not a safetensors file: \(buf.count) bytes, shorter than the 8-byte header length")
        }
        let n64 = buf.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard n64 <= UInt64(maxHeaderSize) else {
            throw bad("safetensors header length \(n64) (bytes 0-7) exceeds the 100,000,000-byte limit; the file is corrupt or not safetensors")
        }
        let n = Int(n64)
        guard 8 + n <= buf.count else {
            throw bad("safetensors header claims \(n) bytes but only \(buf.count - 8) follow the length field; the file is truncated")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: buf[8..<(8 + n)])
        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes, options: .strict)
        } catch let f as JSONParseError {
            if let dup = f.duplicateKey {
                throw bad("safetensors header names \"\(dup)\" twice (byte \(8 + f.offset)); other readers would silently keep one of the two, so the file is refused")
            }
            throw bad("safetensors header is not valid JSON: \(f.message) at byte \(8 + f.offset)")
        }
        guard case .object(let members) = json else {
            throw bad("safetensors header is \(json.typeName), expected a JSON object")
        }

        var entries: [SafetensorsEntry] = []
        entries.reserveCapacity(members.count)
        var metadata: [(String, String)] = []
        for (key, value) in members {
            if key == "__metadata__" {
                switch value {
                case .null: break
                case .object(let kv):
                    for (k, v) in kv {
                        guard case .string(let s) = v else {
                            throw bad("__metadata__[\"\(k)\"] is \(v.typeName); safetensors metadata values must be strings")
                        }
                        metadata.append((k, s))
                    }
                default:
                    throw bad("__metadata__ is \(value.typeName), expected an object of strings")
                }
                continue
            }
            entries.append(try parseEntry(key, value, file: file))
        }

        try validate(entries, dataSize: buf.count - 8 - n, file: file)
        return SafetensorsHeader(entries: entries, metadata: metadata, dataStart: 8 + n)
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, file: String) throws -> SafetensorsEntry {
        func bad(_ msg: String) -> WconvError { WconvError(.invalidInput, "tensor \"\(name)\": \(msg)", file: file) }
        guard case .object(let fields) = value else { throw bad("header entry is \(value.typeName), expected an object") }
        var dtypeV: JSONValue?, shapeV: JSONValue?, offsetsV: JSONValue?
        for (k, v) in fields {
            // Unknown fields are accepted, as the reference does (serde ignores them).
            switch k {
            case "dtype": dtypeV = v
            case "shape": shapeV = v
            case "data_offsets": offsetsV = v
            default: break
            }
        }
        guard case .string(let dtypeName)? = dtypeV else { throw bad("missing or non-string \"dtype\"") }
        guard SafetensorsDType.index[dtypeName] != nil else {
            throw bad("unknown dtype \"\(dtypeName)\" (safetensors dtypes are upper case: F32, F16, BF16, I64, …)")
        }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw WconvError(.invalidInput, "tensor \"\(name)\": dtype \(dtypeName) is valid safetensors but not supported by wconv (supported: \(DType.allCases.map(\.safetensorsName).joined(separator: ", ")))", file: file)
        }
        guard case .array(let dims)? = shapeV else { throw bad("missing or non-array \"shape\"") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for d in dims {
            guard let v = d.nonNegativeInt else { throw bad("shape \(render(dims)) holds a value that is not a non-negative integer") }
            shape.append(v)
        }
        guard case .array(let offs)? = offsetsV, offs.count == 2,
              let begin = offs[0].nonNegativeInt, let end = offs[1].nonNegativeInt else {
            throw bad("\"data_offsets\" must be two non-negative integers [begin, end]")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func render(_ dims: [JSONValue]) -> String {
        "[" + dims.map { v -> String in
            switch v {
            case .int, .uint, .double: return v.serialized
            default: return v.typeName
            }
        }.joined(separator: ",") + "]"
    }

    /// Offsets must tile the data section from 0 with no holes, overlaps or trailing bytes, and each
    /// range must hold exactly numel × element size bytes (reference `validate`).
    static func validate(_ entries: [SafetensorsEntry], dataSize: Int, file: String) throws {
        var order = Array(entries.indices)
        order.sort { a, b in
            let ea = entries[a], eb = entries[b]
            return ea.begin != eb.begin ? ea.begin < eb.begin : ea.end < eb.end
        }
        var start = 0
        for i in order {
            let e = entries[i]
            guard e.begin == start, e.end >= e.begin else {
                let what = e.begin < start ? "overlaps the previous tensor (which ends at \(start))"
                    : e.begin > start ? "leaves a hole: the previous tensor ends at \(start)" : "ends before it begins"
                throw WconvError(.invalidInput, "tensor \"\(e.name)\": data_offsets [\(e.begin), \(e.end)] \(what); offsets must tile the data section exactly", file: file)
            }
            start = e.end
            var numel = 1
            for d in e.shape {
                let (m, o) = numel.multipliedReportingOverflow(by: d)
                guard !o else { throw WconvError(.invalidInput, "tensor \"\(e.name)\": shape \(e.shape) overflows", file: file) }
                numel = m
            }
            let (bytes, o) = numel.multipliedReportingOverflow(by: e.dtype.byteSize)
            guard !o else { throw WconvError(.invalidInput, "tensor \"\(e.name)\": shape \(e.shape) × \(e.dtype.byteSize) bytes overflows", file: file) }
            guard e.end - e.begin == bytes else {
                throw WconvError(.invalidInput, "tensor \"\(e.name)\": \(e.dtype.safetensorsName) \(e.shape) needs \(bytes) bytes but data_offsets [\(e.begin), \(e.end)] give \(e.end - e.begin)", file: file)
            }
        }
        guard start == dataSize else {
            throw WconvError(.invalidInput, "the tensors cover \(start) bytes of a \(dataSize)-byte data section (\(dataSize > start ? "trailing bytes after the last tensor" : "the file is truncated")); a valid safetensors file has no holes", file: file)
        }
    }
}
