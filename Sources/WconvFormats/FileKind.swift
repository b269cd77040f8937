import WconvTensor

/// What a file is, from its first bytes (never its extension): the one sniffer behind
/// `ModelFile.sniff` and the PyTorch reader, so a wrong file gets the same message that says what it
/// is instead (design.md §4–5; formats doc §8.1).
enum FileKind: Equatable {
    // Kinds a reader takes.
    case zip
    case hdf5
    case legacyPickle
    case plainPickle
    case safetensors
    /// A JSON object: a sharded-checkpoint index, if anything.
    case json
    case onnx
    // Kinds refused with a message saying what the file is.
    case empty
    case gitLFSPointer(oid: String?, size: String?)
    case html
    case tar
    case gzip
    case sevenZip
    case npy
    case text(String)
    case unknown

    static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    /// Decides from `head` (the first 4 KiB are plenty) of a file of `fileSize` bytes.
    static func detect(_ head: UnsafeRawBufferPointer, fileSize: Int) -> FileKind {
        typealias S = FileSignature
        if head.isEmpty { return .empty }
        if S.startsWith(head, "version https://git-lfs") {
            var oid: String?, size: String?
            for line in String(decoding: head.prefix(1024), as: UTF8.self).split(separator: "\n") {
                if line.hasPrefix("oid ") { oid = String(line.dropFirst(4)) }
                if line.hasPrefix("size ") { size = String(line.dropFirst(5)) }
            }
            return .gitLFSPointer(oid: oid, size: size)
        }
        if S.looksLikeHTML(head) { return .html }
        if S.hdf5Offset(head) != nil { return .hdf5 }
        if S.startsWith(head, "PK\u{03}\u{04}") || S.startsWith(head, "PK\u{05}\u{06}") { return .zip }
        if S.startsWith(head, legacyMagic) { return .legacyPickle }
        if S.matches(head, at: 257, "ustar") { return .tar }
        if SafetensorsReader.sniff(head, fileSize: fileSize) { return .safetensors }
        if SafetensorsReader.looksLikeIndex(head) { return .json }
        if S.looksLikeONNX(head) { return .onnx }
        if head.count >= 2, head[0] == 0x80, head[1] <= 5 { return .plainPickle }
        if S.startsWith(head, [0x1F, 0x8B]) { return .gzip }
        if S.startsWith(head, Array("7z".utf8) + [0xBC, 0xAF]) { return .sevenZip }
        if S.startsWith(head, [0x93] + Array("NUMPY".utf8)) { return .npy }
        let sample = head.prefix(512)
        if sample.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return .text(String(decoding: sample.prefix(40), as: UTF8.self))
        }
        return .unknown
    }

    /// What the file is, for "not a PyTorch file: this is …".
    var description: String {
        switch self {
        case .zip: return "a zip archive"
        case .hdf5: return "an HDF5 file (Keras .h5?)"
        case .legacyPickle, .plainPickle: return "a pickle"
        case .safetensors: return "a safetensors file"
        case .json: return "a JSON document (is it a sharded checkpoint index? pass the *.index.json path itself)"
        case .onnx: return "an ONNX model"
        case .empty: return "an empty file"
        case .gitLFSPointer: return "a Git LFS pointer"
        case .html: return "an HTML page"
        case .tar: return "a tar archive"
        case .gzip: return "a gzip-compressed file; decompress it first (gunzip)"
        case .sevenZip: return "a 7-Zip archive; model files are zip archives — extract it and pass the file inside"
        case .npy: return "a NumPy .npy array"
        case .text(let start): return "a text file starting with '\(start)'"
        case .unknown: return "not a recognised model file"
        }
    }

    /// The error for a file no reader takes (every kind but the readable ones); `head` gives the
    /// first bytes shown for an unknown file.
    func refusal(path: String, size: Int, head: UnsafeRawBufferPointer) -> WconvError {
        func refuse(_ msg: String) -> WconvError { WconvError(.invalidInput, msg, file: path) }
        switch self {
        case .empty:
            return refuse("the file is empty (0 bytes); the download or copy did not finish")
        case .gitLFSPointer(let oid, let sz):
            return refuse("this is a Git LFS pointer (\(size) bytes of text\(oid.map { ", \($0)" } ?? "")\(sz.map { ", real size \($0) bytes" } ?? "")), not the model itself; run `git lfs pull` (or download the file directly) to fetch the real weights")
        case .html:
            return refuse("this is an HTML page (\(size) bytes), probably an error or login page saved in place of the model; download the file again from its direct link")
        case .tar:
            return refuse("this is a tar archive: either PyTorch's pre-0.4 tar format (load and re-save it with a current torch.save) or a packed download to extract first")
        case .gzip:
            return refuse("this file is gzip-compressed; decompress it (gunzip) and pass the result")
        case .sevenZip:
            return refuse("this is a 7-Zip archive; extract it and pass the model file inside")
        case .npy:
            return refuse("this is a NumPy .npy array, not a model file; wconv reads PyTorch, safetensors, ONNX and Keras files")
        default:
            let hex = head.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
            return refuse("not a recognised model file (\(size) bytes, starting \(hex)); wconv reads PyTorch (.pth/.pt/.bin, TorchScript, legacy), safetensors (+ .index.json), ONNX and Keras (.h5/.keras). If the file is truncated, download it again")
        }
    }

    /// True for kinds refused whatever the reader (empty, LFS pointer, HTML, archives, arrays).
    var isRefusedEverywhere: Bool {
        switch self {
        case .empty, .gitLFSPointer, .html, .tar, .gzip, .sevenZip, .npy: return true
        default: return false
        }
    }
}
