import WconvTensor

/// Recognises what a file is from its first bytes, so a wrong file gets a message that says what it is
/// instead of a pickle error about an "unsupported operand" (design.md §5; formats doc §8.1).
enum FileKind: Equatable {
    case zip
    case legacyPickle
    case plainPickle
    case gitLFSPointer(oid: String?, size: String?)
    case html
    case tar
    case empty
    case other(String)

    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    static func detect(_ b: UnsafeRawBufferPointer) -> FileKind {
        if b.isEmpty { return .empty }
        func starts(_ p: [UInt8], at o: Int = 0) -> Bool {
            b.count >= o + p.count && Swift.zip(p, b[o..<(o + p.count)]).allSatisfy { $0 == $1 }
        }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts(legacyMagic) { return .legacyPickle }
        if starts(Array("version https://git-lfs".utf8)) {
            let text = String(decoding: b.prefix(1024), as: UTF8.self)
            var oid: String?, size: String?
            for line in text.split(separator: "\n") {
                if line.hasPrefix("oid ") { oid = String(line.dropFirst(4)) }
                if line.hasPrefix("size ") { size = String(line.dropFirst(5)) }
            }
            return .gitLFSPointer(oid: oid, size: size)
        }
        if b.count >= 262, starts(Array("ustar".utf8), at: 257) { return .tar }
        // Skip a UTF-8 BOM and whitespace before looking for markup.
        var i = starts([0xEF, 0xBB, 0xBF]) ? 3 : 0
        while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 }
        let head = String(decoding: b[i..<min(b.count, i + 512)], as: UTF8.self).lowercased()
        if head.hasPrefix("<!doctype html") || head.hasPrefix("<html") || head.hasPrefix("<head") || head.hasPrefix("<?xml") && head.contains("<html") {
            return .html
        }
        if b[0] == 0x80, b.count >= 2, b[1] <= 5 { return .plainPickle }
        if starts([0x1F, 0x8B]) { return .other("a gzip-compressed file; decompress it first (gunzip)") }
        if starts(Array("7z".utf8) + [0xBC, 0xAF]) { return .other("a 7-Zip archive; PyTorch files are zip archives — extract it and pass the .pth/.bin inside") }
        if starts([0x89] + Array("HDF".utf8)) { return .other("an HDF5 file (Keras .h5?), not a PyTorch file") }
        if starts([0x93] + Array("NUMPY".utf8)) { return .other("a NumPy .npy array, not a PyTorch file") }
        if b.count >= 9 {
            let n = b.loadUnaligned(as: UInt64.self)
            if n > 1, n < 100_000_000, b[8] == UInt8(ascii: "{") {
                return .other("a safetensors file, not a PyTorch file")
            }
        }
        if head.hasPrefix("{") { return .other("a JSON document (is it a sharded checkpoint index? pass the *.index.json path itself)") }
        let printable = b.prefix(512).filter { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }.count
        if printable == min(512, b.count) { return .other("a text file starting with '\(String(head.prefix(40)))'") }
        return .other("not a recognised model file (first bytes \(b.prefix(8).map { String($0, radix: 16) }.joined(separator: " ")))")
    }

    /// The error for kinds that cannot be read.
    func refusal(path: String, size: Int) -> WconvError {
        switch self {
        case .empty:
            return WconvError.invalid("the file is empty (0 bytes); the download or copy did not finish", file: path)
        case .gitLFSPointer(let oid, let sz):
            return WconvError.invalid("this is a Git LFS pointer (\(size) bytes of text\(oid.map { ", \($0)" } ?? "")\(sz.map { ", real size \($0) bytes" } ?? "")), not the model itself; run `git lfs pull` (or download the file directly) to fetch the real weights", file: path)
        case .html:
            return WconvError.invalid("this is an HTML page (\(size) bytes), not a model file: the download returned an error or login page; check the URL and authentication", file: path)
        case .tar:
            return WconvError.invalid("this is a tar archive: either a PyTorch file older than 0.1.10 (unsupported; load and re-save it with an old torch) or an archive to extract first", file: path)
        case .other(let what):
            return WconvError.invalid("not a PyTorch file: this is \(what)", file: path)
        case .zip, .legacyPickle, .plainPickle:
            return WconvError.invalid("unexpected file kind", file: path)
        }
    }
}
