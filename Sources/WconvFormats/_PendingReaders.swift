import WconvTensor

// Placeholders so the package builds while the PyTorch, ONNX and Keras readers are written in other
// branches. The lead deletes this file when those branches are merged; the signatures are the
// contract ModelFile calls.

/// Options for `PyTorchReader.read`.
public struct PyTorchReadOptions {
    /// Dotted path of the state dict inside a checkpoint (`--key a.b`); nil finds it automatically.
    public var key: String?
    public init(key: String? = nil) { self.key = key }
}

public enum PyTorchReader {
    public static func read(path: String, options: PyTorchReadOptions = .init()) throws -> TensorBundle {
        throw WconvError(.runtime, "the PyTorch reader is not merged yet", file: path)
    }
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Bool { false }
}

public enum PyTorchWriter {
    public static func write(_ bundle: TensorBundle, to path: String) throws {
        throw WconvError(.runtime, "the .pth writer is not merged yet", file: path)
    }
}

public enum ONNXReader {
    public static func read(path: String) throws -> TensorBundle {
        throw WconvError(.runtime, "the ONNX reader is not merged yet", file: path)
    }
}

public enum KerasReader {
    public static func read(path: String) throws -> TensorBundle {
        throw WconvError(.runtime, "the Keras reader is not merged yet", file: path)
    }
}
