import WconvTensor

/// Writes a zip archive of STORED members the way `torch.save` lays them out: every payload starts at a
/// multiple of `alignment` (padding goes into a `0x4246` "FB" extra field of `Z` bytes, as PyTorch's
/// `inline_container.cc` does), and a zip64 end-of-central-directory record plus locator are always
/// written. Unlike torch, CRC and sizes go straight into the local header (no data descriptor), a simpler
/// layout that `torch.load`, Python's `zipfile` and `ZipArchive` all accept.
///
/// Also meant for other zip-based formats (`.npz`, `.keras`); pass `alignment: 1` to disable padding.
public final class ZipWriter {
    private let out: AtomicFileWriter
    private let alignment: Int
    private struct Written { var name: [UInt8]; var crc: UInt32; var size: Int; var offset: Int }
    private var written: [Written] = []
    private var names: Set<String> = []
    private var finished = false

    /// Appends members to `output` starting at its current offset.
    public init(output: AtomicFileWriter, alignment: Int = 64) {
        self.out = output
        self.alignment = max(1, alignment)
    }

    /// Adds a STORED member holding `bytes`.
    public func addStored(name: String, bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "ZipWriter.addStored after finish()")
        guard !names.contains(name) else { throw WconvError(.runtime, "zip writer: duplicate member name '\(name)'", file: out.path) }
        try ZipArchive.validate(name: name, index: written.count)
        names.insert(name)
        let nameBytes = Array(name.utf8)
        let offset = out.offset
        let crc = ZipCRC32.checksum(bytes)
        let size = bytes.count
        let needs64 = size >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF
        var extra: [UInt8] = []
        if needs64 {
            // Local zip64 extra: both sizes (the header fields then hold 0xFFFFFFFF).
            extra.le16(0x0001); extra.le16(16); extra.le64(UInt64(size)); extra.le64(UInt64(size))
        }
        if alignment > 1 {
            let base = offset + 30 + nameBytes.count + extra.count + 4
            let pad = (alignment - base % alignment) % alignment
            extra.le16(0x4246); extra.le16(UInt16(pad))
            extra.append(contentsOf: repeatElement(UInt8(ascii: "Z"), count: pad))
        }
        var h: [UInt8] = []
        h.le32(0x0403_4b50)
        h.le16(needs64 ? 45 : 20)        // version needed
        h.le16(0x0800)                   // UTF-8 names
        h.le16(0)                        // STORED
        h.le16(0); h.le16(0x21)          // DOS time 00:00, date 1980-01-01
        h.le32(crc)
        h.le32(needs64 ? 0xFFFF_FFFF : UInt32(size))
        h.le32(needs64 ? 0xFFFF_FFFF : UInt32(size))
        h.le16(UInt16(nameBytes.count)); h.le16(UInt16(extra.count))
        h.append(contentsOf: nameBytes)
        h.append(contentsOf: extra)
        try out.write(h)
        try out.write(bytes)
        written.append(Written(name: nameBytes, crc: crc, size: size, offset: offset))
    }

    public func addStored(name: String, data: [UInt8]) throws {
        try data.withUnsafeBytes { try addStored(name: name, bytes: $0) }
    }

    public func addStored(name: String, string: String) throws {
        try addStored(name: name, data: Array(string.utf8))
    }

    /// Writes the central directory, the zip64 end records and the classic end record.
    public func finish() throws {
        precondition(!finished, "ZipWriter.finish() twice")
        finished = true
        let cdStart = out.offset
        var cd: [UInt8] = []
        for w in written {
            let big = w.size >= 0xFFFF_FFFF
            let farOff = w.offset >= 0xFFFF_FFFF
            var extra: [UInt8] = []
            if big || farOff {
                var body: [UInt8] = []
                if big { body.le64(UInt64(w.size)); body.le64(UInt64(w.size)) }
                if farOff { body.le64(UInt64(w.offset)) }
                extra.le16(0x0001); extra.le16(UInt16(body.count)); extra.append(contentsOf: body)
            }
            cd.le32(0x0201_4b50)
            cd.le16(big || farOff ? 45 : 20)   // version made by (MS-DOS, 2.0/4.5)
            cd.le16(big || farOff ? 45 : 20)   // version needed
            cd.le16(0x0800)
            cd.le16(0)
            cd.le16(0); cd.le16(0x21)
            cd.le32(w.crc)
            cd.le32(big ? 0xFFFF_FFFF : UInt32(w.size))
            cd.le32(big ? 0xFFFF_FFFF : UInt32(w.size))
            cd.le16(UInt16(w.name.count)); cd.le16(UInt16(extra.count)); cd.le16(0)
            cd.le16(0); cd.le16(0); cd.le32(0)
            cd.le32(farOff ? 0xFFFF_FFFF : UInt32(w.offset))
            cd.append(contentsOf: w.name)
            cd.append(contentsOf: extra)
            if cd.count >= 1 << 20 { try out.write(cd); cd.removeAll(keepingCapacity: true) }
        }
        try out.write(cd)
        let cdSize = out.offset - cdStart
        let z64 = out.offset
        var tail: [UInt8] = []
        tail.le32(0x0606_4b50); tail.le64(44)
        tail.le16(45); tail.le16(45); tail.le32(0); tail.le32(0)
        tail.le64(UInt64(written.count)); tail.le64(UInt64(written.count))
        tail.le64(UInt64(cdSize)); tail.le64(UInt64(cdStart))
        tail.le32(0x0706_4b50); tail.le32(0); tail.le64(UInt64(z64)); tail.le32(1)
        let n16 = UInt16(clamping: written.count >= 0xFFFF ? 0xFFFF : written.count)
        tail.le32(0x0605_4b50); tail.le16(0); tail.le16(0); tail.le16(n16); tail.le16(n16)
        tail.le32(cdSize >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdSize))
        tail.le32(cdStart >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdStart))
        tail.le16(0)
        try out.write(tail)
    }
}

extension Array where Element == UInt8 {
    @inline(__always) mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    @inline(__always) mutating func le32(_ v: UInt32) { for i in 0..<4 { append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
    @inline(__always) mutating func le64(_ v: UInt64) { for i in 0..<8 { append(UInt8((v >> (8 * UInt64(i))) & 0xFF)) } }
}
