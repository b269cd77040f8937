import CWconvCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streaming SHA-256 (FIPS 180-4) for provenance: the hash of a source model file is computed in
/// fixed-size chunks so a multi-gigabyte file never has to sit in memory. OpenSSL's libcrypto does
/// the work (its EVP digest uses the CPU's SHA extensions where they exist), loaded on first use
/// (wconv_crypto.h): with the scalar Swift version it replaced, `wconv import` of a ResNet-50 .pth
/// took 0.56 s, with libcrypto 0.15–0.19 s.
public struct SHA256: Sendable {
    /// The EVP context; copied on write, so a SHA256 value behaves as a value.
    private final class Context: @unchecked Sendable {
        let ctx: UnsafeMutableRawPointer
        init(copying other: Context? = nil) {
            let made = other.map { wconv_sha256_copy($0.ctx) } ?? wconv_sha256_new()
            guard let made else {
                // libcrypto is one of wconv's listed dependencies (tools/install-deps).
                fatalError("SHA-256: \(SHA256.unavailable ?? "libcrypto failed to make a digest context")")
            }
            ctx = made
        }
        deinit { wconv_sha256_free(ctx) }
    }
    private var context = Context()

    /// Why SHA-256 cannot run here (libcrypto missing), or nil.
    public static var unavailable: String? { wconv_crypto_load_error().map { String(cString: $0) } }

    public init() {}

    private mutating func unique() -> UnsafeMutableRawPointer {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        return context.ctx
    }

    /// Feeds bytes.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0, let base = data.baseAddress else { return }
        wconv_sha256_update(unique(), base, data.count)
    }

    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { update($0) }
    }

    /// The digest; the value starts over afterwards.
    public mutating func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ctx = unique()
        out.withUnsafeMutableBufferPointer { wconv_sha256_final(ctx, $0.baseAddress!) }
        return out
    }

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(digest.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// Hex digest of in-memory bytes.
    public static func hex<C: Collection>(of bytes: C) -> String where C.Element == UInt8 {
        var s = SHA256()
        s.update(bytes)
        return hex(s.finalize())
    }

    /// Hex digest of a file, read in 1 MiB chunks.
    public static func hex(ofFile path: String) throws -> String {
        if let why = unavailable { throw WconvError(.runtime, why, file: path) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw WconvError(.invalidInput, "cannot open for hashing: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var s = SHA256()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { chunk.deallocate() }
        while true {
            let n = read(fd, chunk.baseAddress, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw WconvError(.invalidInput, "read failed while hashing: \(String(cString: strerror(errno)))", file: path)
            }
            if n == 0 { break }
            s.update(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        }
        return hex(s.finalize())
    }
}
