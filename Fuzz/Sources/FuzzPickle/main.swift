import CFuzzDriver
import Wconv
import WconvFormats
import WconvTensor

/// Feeds arbitrary bytes to the pickle decoder with a torch-like persistent loader. Any crash, hang,
/// sanitizer report or unbounded allocation is a bug: bad input must only ever throw WconvError.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var keys: [String: PickleStorage] = [:]
    let load: (PickleValue) throws -> PickleValue = { pid in
        guard let items = pid.sequenceItems, items.count >= 5, let key = items[2].asString, let n = items[4].asInt else {
            throw WconvError.invalid("bad pid")
        }
        let s = keys[key] ?? PickleStorage(key: key, dtype: .f32, dtypeName: "float32", elementSize: 4, declaredCount: n, location: "cpu")
        keys[key] = s
        return .storage(s)
    }
    do {
        let r = try PickleDecoder.decode(bytes, context: "fuzz", persistentLoad: load)
        // Touch the result the way readers do: summaries walk the whole tree with their own caps.
        _ = r.value.kindName
        _ = r.globalsSeen.count + r.stubbedGlobals.count
    } catch {}
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzPickle_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzPickle_main")
public func fuzzPickleMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzPickle($0, size) } ?? 0 }
}
