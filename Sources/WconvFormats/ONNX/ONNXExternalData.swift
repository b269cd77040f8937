#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WconvTensor

/// External-data files of one model (ONNX docs/ExternalData.md): `location` is relative to the model's
/// folder; absolute paths, `..` and links that lead out of the folder are refused; each file is mapped
/// once and tensors are views into it (copied only when an offset is not aligned to the element size).
final class ONNXExternalData {
    let modelPath: String?
    let folder: String?
    private var files: [String: MappedFile] = [:]

    init(modelPath: String?) {
        self.modelPath = modelPath
        if let p = modelPath {
            if let slash = p.lastIndex(of: "/") { folder = slash == p.startIndex ? "/" : String(p[..<slash]) } else { folder = "." }
        } else {
            folder = nil
        }
    }

    /// Checks a `location` value: relative, no `..`, no backslashes or drive letters, no NUL.
    static func checkLocation(_ location: String, tensor: String, path: String?) throws {
        func refuse(_ why: String) -> WconvError {
            WconvError(.unsafe, "tensor '\(tensor)': external data location '\(location)' \(why); external data must sit in the model's folder or below it", file: path)
        }
        if location.isEmpty { throw WconvError.invalid("tensor '\(tensor)': external data without a location", file: path) }
        if location.hasPrefix("/") { throw refuse("is an absolute path") }
        if location.contains("\\") || location.contains("\0") { throw refuse("contains a backslash or NUL") }
        if location.count >= 2, location.dropFirst().first == ":" { throw refuse("names a drive") }
        if location.split(separator: "/", omittingEmptySubsequences: true).contains("..") { throw refuse("climbs out with '..'") }
    }

    /// The bytes of one external tensor: a view into the mapped file, or an aligned copy.
    func storage(location: String, offset: Int, length: Int?, expected: Int, dtype: DType, tensor: String) throws -> Storage {
        try ONNXExternalData.checkLocation(location, tensor: tensor, path: modelPath)
        guard let folder else {
            throw WconvError.invalid("tensor '\(tensor)' keeps its data in external file '\(location)', which needs the model's folder; read the model from its file path", file: modelPath)
        }
        let full = folder == "/" ? "/" + location : folder + "/" + location
        let file = try mapped(full, location: location, tensor: tensor)
        let len = length ?? (file.size - min(offset, file.size))
        guard offset >= 0, len >= 0, offset <= file.size, len <= file.size - offset else {
            throw WconvError.invalid("tensor '\(tensor)': external data range offset \(offset) length \(len) runs past the end of '\(location)' (\(file.size) bytes)", file: modelPath)
        }
        guard len == expected else {
            throw WconvError.invalid("tensor '\(tensor)': external data length \(len) does not match its shape and dtype (\(expected) bytes of \(dtype.rawValue))", file: modelPath)
        }
        // Mappings are page aligned, so the offset decides whether typed loads are aligned.
        if offset % dtype.byteSize == 0 {
            return Storage(mapped: file, offset: offset, count: len)
        }
        return Storage(copying: UnsafeRawBufferPointer(start: file.bytes.advanced(by: offset), count: len))
    }

    private func mapped(_ full: String, location: String, tensor: String) throws -> MappedFile {
        if let f = files[full] { return f }
        // A symlink inside the folder must not lead out of it either.
        guard let realFolder = realpath(folder!, nil) else {
            throw WconvError.invalid("cannot resolve the model's folder", file: modelPath)
        }
        defer { free(realFolder) }
        guard let realFile = realpath(full, nil) else {
            throw WconvError.invalid("tensor '\(tensor)': external data file '\(location)' not found beside the model (\(String(cString: strerror(errno))))", file: modelPath)
        }
        defer { free(realFile) }
        let rf = String(cString: realFolder), rp = String(cString: realFile)
        let prefix = rf.hasSuffix("/") ? rf : rf + "/"
        guard rp.hasPrefix(prefix) else {
            throw WconvError(.unsafe, "tensor '\(tensor)': external data location '\(location)' resolves to \(rp), outside the model's folder", file: modelPath)
        }
        let f = try MappedFile(path: rp)
        files[full] = f
        return f
    }
}
