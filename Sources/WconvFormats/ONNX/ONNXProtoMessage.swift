#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CWconvONNX
import WconvTensor

/// The one Swift owner of a protobuf-c `Onnx__ModelProto` tree: unpacked from bytes after the wire
/// walk has checked them, freed with `onnx__model_proto__free_unpacked` when this object goes away.
/// No pointer into the tree escapes; raw_data buffers are handed over to `MallocBytes` owners instead.
final class ONNXProtoMessage {
    let model: UnsafeMutablePointer<Onnx__ModelProto>

    init(bytes: UnsafeRawBufferPointer, path: String?) throws {
        try ONNXWireScan.validate(bytes, path: path)
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let m = onnx__model_proto__unpack(nil, bytes.count, base) else {
            throw WconvError.invalid("not a valid ONNX protobuf (\(bytes.count) bytes): protobuf-c could not unpack a ModelProto (wrong field types or invalid values); the file is corrupt or not an ONNX model", file: path)
        }
        model = m
    }

    deinit { onnx__model_proto__free_unpacked(model, nil) }
}

/// A malloc'd buffer taken over from protobuf-c (a TensorProto's raw_data), freed with `free`.
/// Taking it avoids copying the tensor bytes a second time after protobuf-c's unpack copied them.
final class MallocBytes {
    let pointer: UnsafeMutableRawPointer
    init(_ p: UnsafeMutableRawPointer) { pointer = p }
    deinit { free(pointer) }
}

/// A C string from protobuf-c; proto2 leaves absent strings NULL.
@inline(__always) func onnxString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

/// Elements of a protobuf-c repeated field (`n_x`, `x`) as a Swift buffer (empty when NULL).
@inline(__always) func onnxRepeated<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> UnsafeMutableBufferPointer<T> {
    guard let p, n > 0 else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
    return UnsafeMutableBufferPointer(start: p, count: n)
}
