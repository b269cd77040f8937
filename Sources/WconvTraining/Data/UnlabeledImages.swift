import Foundation
import WconvTensor

/// Every .png/.jpg/.jpeg under a directory (recursively, sorted), label 0: the unlabeled target
/// domain of `--adapt-target DIR`. Class sub-folders, if any, are ignored.
public struct UnlabeledImageDataset: LabelledDataset {
    public let root: String
    public let files: [String]
    public init(root: String) throws {
        self.root = root
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue, let walker = fm.enumerator(atPath: root) else {
            throw WconvError(.invalidInput, "target directory not found", file: root)
        }
        var files: [String] = []
        while let rel = walker.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.hasPrefix(".") { continue }
            if ImageFolderDataset.extensions.contains((name as NSString).pathExtension.lowercased()) { files.append(root + "/" + rel) }
        }
        guard !files.isEmpty else { throw WconvError(.invalidInput, "no .png/.jpg/.jpeg images under the target directory", file: root) }
        self.files = files.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }
    public var count: Int { files.count }
    public var labels: [Int] { [Int](repeating: 0, count: files.count) }
    public var classes: [String] { ["target"] }
    public func describe(_ i: Int) -> String { files[i] }
    public func load(_ i: Int) throws -> RawSample { .image(try ImageDecoder.decode(path: files[i])) }
}
