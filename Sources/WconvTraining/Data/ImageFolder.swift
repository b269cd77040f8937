import Foundation
import WconvTensor

/// torchvision's `ImageFolder` layout: `root/<class>/…/<image>.png|.jpg|.jpeg`. Classes are the
/// sub-directories sorted by code point (Python's `sorted`), files are found recursively and sorted
/// per class, extensions matched case-insensitively. Unlike torchvision, hidden directories (such as
/// `.ipynb_checkpoints`) are not classes, and files with other extensions are counted and reported
/// rather than silently skipped.
public struct ImageFolderDataset: LabelledDataset {
    public let root: String
    public let classes: [String]
    public let files: [String]
    public let labels: [Int]
    /// Files skipped for their extension (path list, for the report).
    public let ignored: [String]
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Scans `root`. `classes`: when given (e.g. the training set's classes for a `--val DIR`),
    /// folders must be a subset and labels use that order.
    public init(root: String, classes fixed: [String]? = nil) throws {
        self.root = root
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw WconvError(.invalidInput, "dataset directory not found (expected one sub-folder per class)", file: root)
        }
        let entries = try fm.contentsOfDirectory(atPath: root)
        let found = entries.filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root + "/" + name, isDirectory: &d) && d.boolValue
        }.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        guard !found.isEmpty else {
            throw WconvError(.invalidInput, "no class folders: expected \(root)/<class>/<image>.png|.jpg, one folder per class", file: root)
        }
        let classList: [String]
        if let fixed {
            let unknown = found.filter { !fixed.contains($0) }
            guard unknown.isEmpty else {
                throw WconvError(.invalidInput, "class folder(s) \(unknown.joined(separator: ", ")) are not among the training classes \(fixed.joined(separator: ", "))", file: root)
            }
            classList = fixed
        } else {
            classList = found
        }
        var files: [String] = [], labels: [Int] = [], ignored: [String] = [], empty: [String] = []
        for cls in found {
            guard let label = classList.firstIndex(of: cls) else { continue }
            var mine: [String] = []
            let dir = root + "/" + cls
            guard let walker = fm.enumerator(atPath: dir) else { continue }
            while let rel = walker.nextObject() as? String {
                let name = (rel as NSString).lastPathComponent
                if name.hasPrefix(".") { if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { walker.skipDescendants() }; continue }
                let path = dir + "/" + rel
                var d: ObjCBool = false
                guard fm.fileExists(atPath: path, isDirectory: &d), !d.boolValue else { continue }
                let ext = (name as NSString).pathExtension.lowercased()
                if ImageFolderDataset.extensions.contains(ext) { mine.append(path) } else { ignored.append(path) }
            }
            mine.sort { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            if mine.isEmpty { empty.append(cls) }
            files += mine
            labels += [Int](repeating: label, count: mine.count)
        }
        if !empty.isEmpty {
            throw WconvError(.invalidInput, "class folder(s) with no .png/.jpg/.jpeg images: \(empty.joined(separator: ", ")); add images or remove the folder(s)", file: root)
        }
        if fixed == nil && classList.count < 2 {
            throw WconvError(.invalidInput, "only one class ('\(classList[0])'): a classifier needs at least two class folders", file: root)
        }
        self.classes = classList
        self.files = files
        self.labels = labels
        self.ignored = ignored
    }

    public var count: Int { files.count }
    public func describe(_ i: Int) -> String { files[i] }
    public func load(_ i: Int) throws -> RawSample { .image(try ImageDecoder.decode(path: files[i])) }

    /// Samples per class.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classes.count)
        for l in labels { c[l] += 1 }
        return c
    }
}

public enum DatasetCheck {
    /// Decodes every sample (on all cores) and throws one error listing every unreadable one, so a
    /// bad file is found before training rather than in epoch 7.
    public static func verifyAll(_ data: any LabelledDataset, threads: Int = 2) throws {
        let n = data.count
        guard n > 0 else { throw WconvError(.invalidInput, "the dataset has no samples") }
        let lock = NSLock()
        var failures: [(Int, String)] = []
        let workers = max(1, min(threads, n))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < n {
                do { _ = try data.load(i) } catch {
                    let msg = (error as? WconvError).map { $0.message } ?? "\(error)"
                    lock.lock(); failures.append((i, msg)); lock.unlock()
                }
                i += workers
            }
        }
        guard failures.isEmpty else {
            failures.sort { $0.0 < $1.0 }
            let lines = failures.prefix(50).map { "  \(data.describe($0.0)): \($0.1)" }
            let more = failures.count > 50 ? "\n  … and \(failures.count - 50) more" : ""
            throw WconvError(.invalidInput, "\(failures.count) of \(n) images cannot be read; fix or remove them before training:\n" + lines.joined(separator: "\n") + more)
        }
    }
}
