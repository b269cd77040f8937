import WconvTensor

extension ModelIO {
    static func exportONNX(_ graph: ModelGraph, to path: String) throws {
        try ONNXGraphExporter.export(graph, to: path)
    }
    static func exportKeras(_ graph: ModelGraph, to path: String) throws {
        throw WconvError(.runtime, "Keras .h5 export is not in this build", file: path)
    }
}
