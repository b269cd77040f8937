import WconvTensor

// Placeholders so the package builds while the PyTorch, ONNX and Keras readers are written in other
// branches. The lead deletes this file when those branches are merged; the signatures are the
// contract ModelFile calls.

public enum KerasReader {
    public static func read(path: String) throws -> TensorBundle {
        throw WconvError(.runtime, "the Keras reader is not merged yet", file: path)
    }
}
