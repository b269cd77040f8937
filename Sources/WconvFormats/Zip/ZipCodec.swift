import CWconvZlib
import WconvTensor

/// CRC-32 (zip/zlib polynomial) through zlib, which is table-driven and fast enough for large records.
public enum ZipCRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var crc = UInt(seed)
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return seed }
        var left = bytes.count
        // zlib takes a 32-bit length; feed it in chunks.
        while left > 0 {
            let n = min(left, 1 << 30)
            crc = CWconvZlib.crc32(crc, p, uInt(n))
            p += n
            left -= n
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}

/// Raw DEFLATE decoding (zip method 8) through zlib into a caller-sized buffer.
enum ZipInflate {
    /// Inflates `src` into exactly `count` bytes at `dst`; throws when the stream is corrupt, ends early,
    /// or would produce more than `count` bytes.
    static func inflateRaw(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawPointer, count: Int, name: String, file: String) throws {
        var stream = z_stream()
        let initRC = inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initRC == Z_OK else {
            throw WconvError(.runtime, "zlib inflateInit failed (\(initRC)) for zip member '\(name)'", file: file)
        }
        defer { inflateEnd(&stream) }
        var inLeft = src.count
        var outLeft = count
        var inPtr = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: UInt8.self))
        var outPtr = dst.assumingMemoryBound(to: UInt8.self)
        // One spare byte detects streams that inflate to more than declared.
        var spare: UInt8 = 0
        var finished = false
        while !finished {
            let inChunk = min(inLeft, 1 << 30)
            stream.next_in = inPtr
            stream.avail_in = uInt(inChunk)
            let useSpare = outLeft == 0
            let outChunk = useSpare ? 1 : min(outLeft, 1 << 30)
            let rc: Int32 = withUnsafeMutablePointer(to: &spare) { sp in
                stream.next_out = useSpare ? sp : outPtr
                stream.avail_out = uInt(outChunk)
                return inflate(&stream, Z_NO_FLUSH)
            }
            let consumed = inChunk - Int(stream.avail_in)
            let produced = outChunk - Int(stream.avail_out)
            inLeft -= consumed
            if inPtr != nil { inPtr = inPtr! + consumed }
            if useSpare {
                if produced > 0 {
                    throw WconvError.invalid("zip member '\(name)' inflates to more than the \(count) bytes its directory entry declares; refusing the inconsistent archive", file: file)
                }
            } else {
                outLeft -= produced
                outPtr += produced
            }
            switch rc {
            case Z_STREAM_END:
                finished = true
            case Z_OK:
                if consumed == 0 && produced == 0 && inLeft == 0 {
                    throw WconvError.invalid("zip member '\(name)' has a truncated DEFLATE stream (\(count - outLeft) of \(count) bytes)", file: file)
                }
            case Z_BUF_ERROR:
                if inLeft == 0 {
                    throw WconvError.invalid("zip member '\(name)' has a truncated DEFLATE stream (\(count - outLeft) of \(count) bytes)", file: file)
                }
            default:
                throw WconvError.invalid("zip member '\(name)' has a corrupt DEFLATE stream (zlib error \(rc) after \(count - outLeft) bytes)", file: file)
            }
        }
        guard outLeft == 0 else {
            throw WconvError.invalid("zip member '\(name)' inflates to \(count - outLeft) bytes but its directory entry declares \(count)", file: file)
        }
    }
}
