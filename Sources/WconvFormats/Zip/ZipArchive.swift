import WconvTensor

/// One member of a zip archive, as the central directory describes it.
public struct ZipEntry: Sendable, Equatable {
    /// Name inside the archive (`/`-separated, validated: no `..`, no `\`, not absolute).
    public let name: String
    /// 0 = STORED, 8 = DEFLATE (the only methods accepted).
    public let method: UInt16
    /// CRC-32 from the central directory; 0 means "not computed" (torch `set_crc32_options(False)`).
    public let crc32: UInt32
    public let compressedSize: Int
    public let uncompressedSize: Int
    /// Offset of the local file header.
    public let localHeaderOffset: Int
    /// Offset of the first payload byte (after the local header, its name and its extra field).
    public let dataOffset: Int
}

/// A zip archive read from a memory-mapped file (or bytes in memory), driven by the central directory
/// only (local header sizes are ignored: torch writes zeros there and puts the real values in data
/// descriptors). The one walk of a zip: the sniffer and every reader see the same members.
///
/// Hostile archives are refused up front: duplicate names, `..` or backslash paths, encrypted or
/// non-STORED/DEFLATE members, members overlapping each other or the central directory, and local
/// headers whose name disagrees with the central directory (the parser differential that let
/// scanners and loaders see different files).
public final class ZipArchive {
    /// Names the archive in messages.
    public let path: String
    private let buffer: UnsafeRawBufferPointer
    /// Keeps `buffer` alive: the mapping, or nil when the caller does.
    private let owner: AnyObject?
    /// Members in central-directory order.
    public private(set) var entries: [ZipEntry]
    private var byName: [String: Int]
    /// Members with a non-zero CRC up to this size are verified whenever they are read (the pickle and
    /// small tensors); larger ones only through `verifyChecksum(of:)`, so big records stay untouched
    /// until used (torch.load with mmap=True checks none).
    public var eagerCRCLimit = 64 << 10

    /// Largest inflated size accepted for one DEFLATE member, and the largest inflate ratio
    /// (DEFLATE cannot exceed ~1032:1, so anything above is a lie in the directory).
    public static let maxInflatedSize = 1 << 34
    public static let maxInflateRatio = 1100

    public convenience init(file: MappedFile) throws {
        try self.init(buffer: file.buffer, owner: file, path: file.path)
    }

    /// An archive over bytes the caller keeps alive (and unchanged) for as long as the archive and
    /// the storages it hands out are used. `path` names it in messages.
    public convenience init(buffer: UnsafeRawBufferPointer, path: String) throws {
        try self.init(buffer: buffer, owner: nil, path: path)
    }

    private init(buffer: UnsafeRawBufferPointer, owner: AnyObject?, path: String) throws {
        self.path = path
        self.buffer = buffer
        self.owner = owner
        self.entries = []
        self.byName = [:]
        do {
            try parse()
        } catch let e as WconvError {
            throw e.inFile(path)
        }
    }

    /// The member called `named`, if any.
    public func entry(named: String) -> ZipEntry? {
        byName[named].map { entries[$0] }
    }

    /// The payload of `entry`: a zero-copy view into the mapping for STORED members, an owned inflated
    /// buffer for DEFLATE members. CRC is checked for members up to `eagerCRCLimit` bytes (and for every
    /// DEFLATE member), unless the archive recorded 0 (= not computed).
    public func data(of entry: ZipEntry) throws -> Storage {
        let storage: Storage
        switch entry.method {
        case 0:
            storage = Storage(bytes: buffer.baseAddress! + entry.dataOffset, count: entry.uncompressedSize, owner: owner ?? self)
            if entry.uncompressedSize <= eagerCRCLimit { try verify(entry, storage) }
        case 8:
            storage = try inflate(entry)
            try verify(entry, storage)
        default:
            throw WconvError.invalid("zip member '\(entry.name)' uses compression method \(entry.method); only STORED and DEFLATE are supported", file: path)
        }
        return storage
    }

    /// Verifies the CRC-32 of a member regardless of its size (the "lazy" check for big records).
    public func verifyChecksum(of entry: ZipEntry) throws {
        try verify(entry, try data(of: entry))
    }

    private func verify(_ entry: ZipEntry, _ storage: Storage) throws {
        guard entry.crc32 != 0 else { return }
        let actual = ZipCRC32.checksum(storage.buffer)
        guard actual == entry.crc32 else {
            throw WconvError.invalid("zip member '\(entry.name)' is corrupt: CRC-32 is \(hex(actual)) but the directory records \(hex(entry.crc32)) (payload at byte \(entry.dataOffset)); the file was damaged in transfer, download it again", file: path)
        }
    }

    private func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    // MARK: - Parsing

    private func parse() throws {
        let buf = buffer
        let size = buf.count
        guard size >= 22 else {
            throw WconvError.invalid("zip archive is \(size) bytes, too short for an end-of-central-directory record; the file is truncated")
        }
        // The EOCD record sits in the last 22 + 65535 (comment) bytes.
        var eocd = -1
        var p = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while p >= lowest {
            if buf.u32(p) == 0x0605_4b50 {
                // The comment must run exactly to the end of the file; otherwise this is a stray signature.
                if p + 22 + Int(buf.u16(p + 20)) == size { eocd = p; break }
            }
            p -= 1
        }
        guard eocd >= 0 else {
            throw WconvError.invalid("no zip end-of-central-directory record found in the last \(size - lowest) bytes, so the central directory cannot be read; the zip file is truncated or not a zip")
        }
        var entryCount = Int(buf.u16(eocd + 10))
        var cdSize = Int(buf.u32(eocd + 12))
        var cdOffset = Int(buf.u32(eocd + 16))
        if buf.u16(eocd + 4) != 0 || buf.u16(eocd + 6) != 0 {
            throw WconvError.invalid("multi-disk (split) zip archives are not supported")
        }
        // Zip64 locator directly before the EOCD.
        if eocd >= 20, buf.u32(eocd - 20) == 0x0706_4b50 {
            let z64 = buf.u64(eocd - 20 + 8)
            guard z64 <= UInt64(eocd - 20), Int(z64) + 56 <= eocd - 20, buf.u32(Int(z64)) == 0x0606_4b50 else {
                throw WconvError.invalid("zip64 end-of-central-directory locator at byte \(eocd - 20) points to \(z64), which holds no zip64 record; the file is truncated or corrupt")
            }
            let r = Int(z64)
            let n = buf.u64(r + 32), s = buf.u64(r + 40), o = buf.u64(r + 48)
            guard n <= UInt64(size), s <= UInt64(size), o <= UInt64(size) else {
                throw WconvError.invalid("zip64 directory at byte \(r) declares \(n) entries / \(s) bytes at \(o), beyond the \(size)-byte file")
            }
            entryCount = Int(n); cdSize = Int(s); cdOffset = Int(o)
        }
        guard cdOffset <= size, cdSize <= size - cdOffset, cdOffset + cdSize <= eocd else {
            throw WconvError.invalid("zip central directory (\(cdSize) bytes at \(cdOffset)) lies outside the \(size)-byte file; the file is truncated")
        }
        guard entryCount <= cdSize / 46 else {
            throw WconvError.invalid("zip directory declares \(entryCount) entries but is only \(cdSize) bytes")
        }

        var list: [ZipEntry] = []
        list.reserveCapacity(entryCount)
        var names: [String: Int] = [:]
        var q = cdOffset
        let cdEnd = cdOffset + cdSize
        for i in 0..<entryCount {
            guard q + 46 <= cdEnd, buf.u32(q) == 0x0201_4b50 else {
                throw WconvError.invalid("zip central directory entry \(i) at byte \(q) is missing or corrupt; the file is truncated or not a zip")
            }
            let flags = buf.u16(q + 8)
            let method = buf.u16(q + 10)
            let crc = buf.u32(q + 16)
            var csize = UInt64(buf.u32(q + 20))
            var usize = UInt64(buf.u32(q + 24))
            let nameLen = Int(buf.u16(q + 28)), extraLen = Int(buf.u16(q + 30)), commentLen = Int(buf.u16(q + 32))
            var local = UInt64(buf.u32(q + 42))
            let total = 46 + nameLen + extraLen + commentLen
            guard q + total <= cdEnd else {
                throw WconvError.invalid("zip central directory entry \(i) at byte \(q) runs past the directory end")
            }
            let nameBytes = UnsafeRawBufferPointer(rebasing: buf[(q + 46)..<(q + 46 + nameLen)])
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw WconvError.invalid("zip entry \(i) at byte \(q) has a name that is not UTF-8")
            }
            // Zip64 extended information: present fields follow the order usize, csize, offset.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = buf.u16(e), len = Int(buf.u16(e + 2))
                guard e + 4 + len <= extraEnd else { break }
                if id == 0x0001 {
                    var f = e + 4
                    let fEnd = f + len
                    if usize == 0xFFFF_FFFF, f + 8 <= fEnd { usize = buf.u64(f); f += 8 }
                    if csize == 0xFFFF_FFFF, f + 8 <= fEnd { csize = buf.u64(f); f += 8 }
                    if local == 0xFFFF_FFFF, f + 8 <= fEnd { local = buf.u64(f); f += 8 }
                }
                e += 4 + len
            }
            try Self.validate(name: name, index: i)
            guard flags & 0x41 == 0 else {
                throw WconvError.invalid("zip member '\(name)' is encrypted; wconv reads only unencrypted archives")
            }
            guard method == 0 || method == 8 else {
                throw WconvError.invalid("zip member '\(name)' uses compression method \(method); only STORED (0) and DEFLATE (8) are supported")
            }
            guard local < UInt64(size), csize <= UInt64(size), usize <= UInt64(Int.max) else {
                throw WconvError.invalid("zip member '\(name)' declares offset \(local) / size \(csize) beyond the \(size)-byte file; the file is truncated")
            }
            let lo = Int(local)
            guard lo + 30 <= size, buf.u32(lo) == 0x0403_4b50 else {
                throw WconvError.invalid("zip member '\(name)': no local header at byte \(lo); the file is truncated or corrupt")
            }
            let lNameLen = Int(buf.u16(lo + 26)), lExtraLen = Int(buf.u16(lo + 28))
            let dataOffset = lo + 30 + lNameLen + lExtraLen
            guard dataOffset <= size, Int(csize) <= size - dataOffset else {
                throw WconvError.invalid("zip member '\(name)' (\(csize) bytes at \(dataOffset)) runs past the end of the \(size)-byte file; the file is truncated")
            }
            let localName = UnsafeRawBufferPointer(rebasing: buf[(lo + 30)..<(lo + 30 + lNameLen)])
            guard localName.elementsEqual(nameBytes) else {
                throw WconvError.invalid("zip member '\(name)': the local header at byte \(lo) names a different file; the archive is inconsistent (possible scanner-evasion trick)")
            }
            if method == 0, csize != usize {
                throw WconvError.invalid("zip member '\(name)' is STORED but declares \(csize) stored and \(usize) uncompressed bytes")
            }
            if names[name] != nil {
                throw WconvError.invalid("zip archive holds two members named '\(name)'; refusing the ambiguous file")
            }
            names[name] = list.count
            list.append(ZipEntry(name: name, method: method, crc32: crc, compressedSize: Int(csize),
                                 uncompressedSize: Int(usize), localHeaderOffset: lo, dataOffset: dataOffset))
            q += total
        }
        // Members must not overlap each other or the central directory.
        let sorted = list.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (k, en) in sorted.enumerated() {
            let end = en.dataOffset + en.compressedSize
            let next = k + 1 < sorted.count ? sorted[k + 1].localHeaderOffset : cdOffset
            guard end <= next else {
                let other = k + 1 < sorted.count ? "member '\(sorted[k + 1].name)'" : "the central directory"
                throw WconvError.invalid("zip member '\(en.name)' (bytes \(en.localHeaderOffset)..<\(end)) overlaps \(other) at byte \(next); refusing the crafted archive")
            }
        }
        entries = list
        byName = names
    }

    /// Refuses absolute names, `..` components, backslashes and NULs. Works on the UTF-8 bytes: one
    /// pass, no Foundation substring search (its `CFStringFind` showed in a convert's profile, issue 9).
    static func validate(name: String, index: Int) throws {
        let bytes = name.utf8
        var unsafe = bytes.isEmpty || bytes.first == 0x2F     // empty or absolute
        var length = 0, dotsOnly = true                       // the current '/'-separated component
        for b in bytes where !unsafe {
            switch b {
            case 0x5C, 0: unsafe = true                       // backslash, NUL
            case 0x2F: unsafe = length == 2 && dotsOnly; length = 0; dotsOnly = true
            default: length += 1; dotsOnly = dotsOnly && b == 0x2E
            }
        }
        if unsafe || (length == 2 && dotsOnly) {
            throw WconvError.invalid("zip entry \(index) has an unsafe name '\(name)' (absolute, '..', backslash or NUL)")
        }
    }

    private func inflate(_ entry: ZipEntry) throws -> Storage {
        let (ratioCap, o) = entry.compressedSize.multipliedReportingOverflow(by: Self.maxInflateRatio)
        guard entry.uncompressedSize <= Self.maxInflatedSize, o || entry.uncompressedSize <= ratioCap + 1024 else {
            throw WconvError.invalid("zip member '\(entry.name)' claims to inflate \(entry.compressedSize) bytes to \(entry.uncompressedSize); refusing a possible zip bomb", file: path)
        }
        let src = UnsafeRawBufferPointer(rebasing: buffer[entry.dataOffset..<(entry.dataOffset + entry.compressedSize)])
        let out = Storage(zeroedByteCount: entry.uncompressedSize)
        try ZipInflate.inflateRaw(src, into: out.mutableBytes!, count: entry.uncompressedSize, name: entry.name, file: path)
        return out
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    @inline(__always) func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
}
