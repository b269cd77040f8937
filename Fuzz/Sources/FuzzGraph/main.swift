import CFuzzDriver
import Wconv

/// Builds a small valid ONNX graph from the bytes (WconvRuntime/GraphFuzzEntry.swift) and runs it
/// through `InferenceSession`. Any crash, hang or sanitizer report is a bug: a graph the runtime
/// cannot run must throw an error naming the node.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGraph(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzRuntimeGraph(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzGraph_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzGraph_main")
public func fuzzGraphMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzGraph($0, size) } ?? 0 }
}
