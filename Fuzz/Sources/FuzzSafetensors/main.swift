// PLACEHOLDER — to be replaced by the Safetensors format owner with a real harness that feeds the bytes
// to their parser. Until then this target accepts every input and checks nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensorsPlaceholder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    return 0
}
