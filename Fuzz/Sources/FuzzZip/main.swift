import CFuzzDriver
import Wconv
import WconvFormats
import WconvTensor
#if canImport(Glibc)
import Glibc
#endif

/// Feeds arbitrary bytes to the whole PyTorch reader: file sniffing, the zip reader (central directory,
/// zip64, inflate), data.pkl decoding, the legacy format and tensor extraction. The reader maps files,
/// so each input is written to a per-process scratch file first.
enum Scratch {
    // A static (lazily initialised), not a top-level global: top-level code never runs under libFuzzer.
    static let path: String = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(dir)/wconv-fuzzzip-\(getpid()).pt"
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZip(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = open(Scratch.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return 0 }
    var done = 0
    while done < size {
        let n = write(fd, data + done, size - done)
        if n <= 0 { break }
        done += n
    }
    close(fd)
    do {
        let b = try PyTorchReader.read(path: Scratch.path)
        // Materialise values as a consumer would (extent checks must have made this safe).
        for t in b.tensors.values { _ = t.contiguousByteArray().count }
    } catch {}
    return 0
}

// Entry point: SwiftPM links `main` to `FuzzZip_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzZip_main")
public func fuzzZipMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in data.map { fuzzZip($0, size) } ?? 0 }
}
