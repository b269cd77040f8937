import Foundation
import WconvTensor

/// NumPy `.npy` files (format versions 1–3): the input/output format of `wconv run`.
/// Every header field and size is checked against the file before use.
public enum NPY {
    /// Reads an array; little-endian and byte dtypes (f2 f4 f8 i1 i2 i4 i8 u1 b1), C or Fortran order.
    public static func read(path: String) throws -> Tensor {
        let file = try MappedFile(path: path)
        do { return try parse(file.buffer, owner: file) } catch let e as WconvError { throw e.inFile(path) }
    }

    /// Parses an array held in memory kept alive by `owner` (a mapped file, an .npz member).
    public static func parse(_ b: UnsafeRawBufferPointer, owner: AnyObject) throws -> Tensor {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard b.count >= 10, Array(b[0..<6]) == magic else {
            throw WconvError.invalid("not a .npy file (no \\x93NUMPY magic at byte 0)")
        }
        let major = b[6]
        let headerLen: Int, headerStart: Int
        switch major {
        case 1: headerLen = Int(b[8]) | Int(b[9]) << 8; headerStart = 10
        case 2, 3:
            guard b.count >= 12 else { throw WconvError.invalid("truncated .npy header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; headerStart = 12
        default: throw WconvError.invalid(".npy format version \(major) is not supported (1–3 are)")
        }
        guard headerLen <= b.count - headerStart else {
            throw WconvError.invalid(".npy header of \(headerLen) bytes at offset \(headerStart) runs past the end of the file (\(b.count) bytes)")
        }
        guard let header = String(bytes: b[headerStart..<(headerStart + headerLen)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw WconvError.invalid(".npy header is not text")
        }
        func field(_ key: String) throws -> String {
            guard let r = header.range(of: "'\(key)':") else { throw WconvError.invalid(".npy header lacks '\(key)': \(header)") }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        let descrField = try field("descr")
        guard descrField.first == "'", let end = descrField.dropFirst().firstIndex(of: "'") else {
            throw WconvError.invalid(".npy descr is not a simple dtype string (structured arrays are not supported): \(header)")
        }
        let descr = String(descrField[descrField.index(after: descrField.startIndex)..<end])
        let fortran = try field("fortran_order").hasPrefix("True")
        let shapeField = try field("shape")
        guard shapeField.first == "(", let close = shapeField.firstIndex(of: ")") else { throw WconvError.invalid(".npy shape is malformed: \(header)") }
        let dims = shapeField[shapeField.index(after: shapeField.startIndex)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw WconvError.invalid(".npy shape entry '\(d)' is not a non-negative integer") }
            shape.append(v)
        }
        let dtypes: [String: DType] = ["<f4": .f32, "<f8": .f64, "<f2": .f16, "|i1": .i8, "<i2": .i16, "<i4": .i32, "<i8": .i64,
                                       "|u1": .u8, "|b1": .bool]
        guard let dtype = dtypes[descr] else {
            if descr.hasPrefix(">") { throw WconvError.invalid(".npy dtype '\(descr)' is big-endian; save it with arr.astype('<\(descr.dropFirst())')") }
            throw WconvError.invalid(".npy dtype '\(descr)' is not supported (float16/32/64, int8–64, uint8, bool are)")
        }
        let count = try Tensor.checkedNumel(shape)
        let dataStart = headerStart + headerLen
        let (bytes, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !o, bytes <= b.count - dataStart else {
            throw WconvError.invalid(".npy data for shape \(shape) \(descr) needs \(bytes) bytes at offset \(dataStart); the file has \(b.count - dataStart)")
        }
        let storage = Storage(copying: UnsafeRawBufferPointer(rebasing: b[dataStart..<(dataStart + bytes)]))
        if fortran && shape.count > 1 {
            var strides = [Int](repeating: 1, count: shape.count)
            for i in 1..<shape.count { strides[i] = strides[i - 1] * max(shape[i - 1], 1) }
            return try Tensor(dtype: dtype, shape: shape, strides: strides, storage: storage).contiguous()
        }
        return try Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    /// The bytes of a version-1 .npy file holding `tensor` (C order, little-endian).
    public static func encode(_ tensor: Tensor) throws -> [UInt8] {
        let descrs: [DType: String] = [.f32: "<f4", .f64: "<f8", .f16: "<f2", .i8: "|i1", .i16: "<i2", .i32: "<i4", .i64: "<i8", .u8: "|u1", .bool: "|b1"]
        guard let descr = descrs[tensor.dtype] else { throw WconvError.invalid("cannot write \(tensor.dtype.rawValue) to .npy") }
        let shapeText = tensor.shape.isEmpty ? "()" : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so the data starts on a 64-byte boundary, header ends with '\n'.
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let n = header.utf8.count
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(header.utf8)
        out += tensor.contiguousByteArray()
        return out
    }

    /// Writes atomically (temporary file beside the target, then rename).
    public static func write(_ tensor: Tensor, to path: String) throws {
        let bytes = try encode(tensor)
        try AtomicFileWriter.write(to: path) { try $0.write(bytes) }
    }
}
