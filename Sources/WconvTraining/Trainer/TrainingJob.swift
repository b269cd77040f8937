import Foundation
import WconvGraph
import WconvTensor

/// What the `finetune`, `plan` and `eval` commands share: datasets from command-line paths.
public enum TrainingJob {
    /// A dataset from a path: an ImageFolder directory, or an `.npz` tensor file.
    public static func dataset(_ path: String, classes: [String]? = nil) throws -> any LabelledDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WconvError(.invalidInput, "dataset not found (give an ImageFolder directory or an .npz with 'images' and 'labels')", file: path)
        }
        if isDir.boolValue { return try ImageFolderDataset(root: path, classes: classes) }
        let ds = try TensorDataset.load(path: path)
        if let classes, ds.classes.count > classes.count {
            throw WconvError(.invalidInput, "has \(ds.classes.count) classes but the training set has \(classes.count)", file: path)
        }
        return ds
    }

    /// Training and validation sets from `--data`, `--val DIR` or `--val-split f` (seeded, stratified).
    public static func data(train path: String, val: String?, valSplit: Double?, seed: UInt64) throws -> (train: any LabelledDataset, val: (any LabelledDataset)?) {
        let all = try dataset(path)
        if val != nil && valSplit != nil { throw WconvError(.usage, "give either --val DIR or --val-split, not both") }
        if let v = val { return (all, try dataset(v, classes: all.classes)) }
        if let f = valSplit {
            let (tr, va) = try DatasetSplit.stratified(labels: all.labels, classCount: all.classes.count, fraction: f, seed: seed)
            return (SubsetDataset(all, indices: tr), SubsetDataset(all, indices: va))
        }
        return (all, nil)
    }

    /// One line per class with its count, for the start-of-run summary.
    public static func summary(_ d: any LabelledDataset, name: String) -> String {
        var counts = [Int](repeating: 0, count: d.classes.count)
        for l in d.labels where l >= 0 && l < counts.count { counts[l] += 1 }
        let parts = zip(d.classes, counts).prefix(12).map { "\($0) \($1)" }.joined(separator: ", ")
        var s = "\(name): \(d.count) images, \(d.classes.count) classes (\(parts)\(d.classes.count > 12 ? ", …" : ""))"
        if let f = d as? ImageFolderDataset, !f.ignored.isEmpty { s += "; ignored \(f.ignored.count) non-image files (e.g. \(f.ignored[0]))" }
        if let mn = counts.min(), let mx = counts.max(), mn > 0, Double(mx) / Double(mn) >= 3 {
            s += "; imbalanced \(mx):\(mn) — consider --class-weights auto"
        }
        return s
    }
}
