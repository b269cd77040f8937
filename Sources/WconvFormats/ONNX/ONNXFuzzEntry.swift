import WconvTensor

/// Fuzz entry for the ONNX reader (Fuzz/FuzzONNX): parses `data` as a ModelProto from memory, decodes
/// every tensor and builds the weight bundle. Any outcome but a thrown `WconvError` is a bug: it must
/// never crash, hang or allocate beyond what the input justifies. External data is refused (no path).
public func fuzzONNXModel(_ data: UnsafeRawBufferPointer) {
    _ = ONNXReader.sniff(data)
    guard let model = try? ONNXReader.readModel(bytes: data, path: nil) else { return }
    let bundle = ONNXReader.bundle(model)
    _ = model.summary
    _ = bundle.totalBytes
    // Touch every tensor's bytes so a view outside its storage would show up under ASan.
    var acc: UInt8 = 0
    for t in bundle.tensors.values {
        t.withContiguousBytes { raw in
            if let last = raw.last { acc ^= last }
        }
    }
    _ = acc
}
