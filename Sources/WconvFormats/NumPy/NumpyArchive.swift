import Foundation
import WconvTensor

/// NumPy `.npy` / `.npz` files for tensor datasets: arrays parsed by `NPY`,
/// `.npz` members read through the shared zip reader (STORED zero-copy, DEFLATE via zlib).
public enum NumpyArchive {
    /// Reads every array of an `.npz` (or a single `.npy`) file, keyed by name without `.npy`.
    public static func read(path: String) throws -> [String: Tensor] {
        let file = try MappedFile(path: path)
        let b = file.buffer
        if b.count >= 6 && b[0] == 0x93 && b[1] == 0x4E {
            let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            return [name: try NPY.read(path: path)]
        }
        do {
            let zip = try ZipArchive(file: file)
            var out: [String: Tensor] = [:]
            for e in zip.entries where e.name.hasSuffix(".npy") {
                let storage = try zip.data(of: e)
                do {
                    out[String(e.name.dropLast(4))] = try NPY.parse(storage.buffer, owner: storage)
                } catch let err as WconvError {
                    throw WconvError(err.kind, "member \(e.name): \(err.message)")
                }
            }
            guard !out.isEmpty else { throw WconvError.invalid("an .npz archive with no .npy members") }
            return out
        } catch let e as WconvError { throw e.inFile(path) }
    }
}
