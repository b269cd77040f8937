import WconvFormats
import WconvTensor

/// Fuzz entry for the whole ONNX import path: parse from memory, build the canonical graph (constant
/// folding, opset-aware mapping) and, when that succeeds, encode it back as ONNX in memory. Any outcome
/// but a thrown `WconvError` is a bug.
public func fuzzONNXGraph(_ data: UnsafeRawBufferPointer) {
    guard let model = try? ONNXReader.readModel(bytes: data, path: nil),
          let graph = try? ONNXGraphBuilder.build(model) else { return }
    _ = try? ONNXGraphExporter.model(graph)
}
