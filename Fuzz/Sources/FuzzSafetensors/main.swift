import CFuzzDriver
import Wconv

/// Feeds arbitrary bytes to the safetensors header parser and validator (and the sharded-index parser).
/// Any crash, hang, sanitizer report or unbounded allocation is a bug: bad input must only throw.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    fuzzSafetensorsHeader(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzSafetensors_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzSafetensors_main")
public func fuzzSafetensorsMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzSafetensors($0, size) } ?? 0 }
}
