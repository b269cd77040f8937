import WconvTensor

/// Lists the entry names of a zip archive from its central directory (zip64 aware). Used only to
/// tell apart the kinds of zip that hold models (PyTorch, TorchScript, Keras); the PyTorch reader has
/// its own full zip reader. Every field read from the file is bounds-checked.
enum ZipDirectory {
    /// Entry names, or nil when no valid central directory is found.
    static func names(_ buf: UnsafeRawBufferPointer, limit: Int = 100_000) -> [String]? {
        let size = buf.count
        guard size >= 22 else { return nil }
        @inline(__always) func u16(_ o: Int) -> Int { Int(buf.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian) }
        @inline(__always) func u32(_ o: Int) -> Int { Int(buf.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        @inline(__always) func u64(_ o: Int) -> UInt64 { buf.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }

        // End of central directory: 22 bytes plus a comment of up to 65535 bytes, at the very end.
        var eocd = -1
        var p = size - 22
        let stop = max(0, size - 22 - 65535)
        while p >= stop {
            if u32(p) == 0x0605_4b50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { return nil }
        var count = u16(eocd + 10)
        var cdOffset = u32(eocd + 16)
        if count == 0xFFFF || cdOffset == 0xFFFF_FFFF {
            // Zip64: the locator sits 20 bytes before the EOCD and points at the zip64 EOCD record.
            guard eocd >= 20, u32(eocd - 20) == 0x0706_4b50 else { return nil }
            let z = u64(eocd - 20 + 8)
            guard size >= 56, z <= UInt64(size - 56), u32(Int(z)) == 0x0606_4b50 else { return nil }
            let c64 = u64(Int(z) + 32), o64 = u64(Int(z) + 48)
            guard c64 <= UInt64(size), o64 <= UInt64(size) else { return nil }
            count = Int(c64)
            cdOffset = Int(o64)
        }
        var names: [String] = []
        var q = cdOffset
        for _ in 0..<min(count, limit) {
            guard q <= size - 46, u32(q) == 0x0201_4b50 else { return nil }
            let nameLen = u16(q + 28), extraLen = u16(q + 30), commentLen = u16(q + 32)
            guard q + 46 + nameLen <= size else { return nil }
            names.append(String(decoding: UnsafeRawBufferPointer(rebasing: buf[(q + 46)..<(q + 46 + nameLen)]), as: UTF8.self))
            q += 46 + nameLen + extraLen + commentLen
        }
        return names
    }
}
