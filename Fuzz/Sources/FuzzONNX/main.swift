import CFuzzDriver
// PLACEHOLDER — to be replaced by the ONNX format owner with a real harness that feeds the bytes
// to their parser. Until then this target accepts every input and checks nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNXPlaceholder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzONNX_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzONNX_main")
public func fuzzONNXMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzONNXPlaceholder($0, size) } ?? 0 }
}
