import WconvTensor

extension ModelIO {
    static func exportONNX(_ graph: ModelGraph, to path: String) throws {
        try ONNXGraphExporter.export(graph, to: path)
    }
    static func exportKeras(_ graph: ModelGraph, to path: String) throws {
        try KerasH5Writer.write(graph, to: path)
    }
}
