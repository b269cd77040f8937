import CFuzzDriver
import Wconv

/// Feeds arbitrary bytes to the ONNX reader and then the graph builder.
/// Any crash, hang, sanitizer report or unbounded allocation is a bug: bad input must only throw.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    fuzzONNXModel(bytes)   // protobuf walk, unpack, tensors, external-data refusal
    fuzzONNXGraph(bytes)   // graph builder: node mapping, constant folding, shape checks
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzONNX_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzONNX_main")
public func fuzzONNXMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzONNX($0, size) } ?? 0 }
}
