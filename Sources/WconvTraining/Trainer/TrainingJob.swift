import Foundation
import WconvGraph
import WconvTensor

/// What the `finetune`, `plan` and `eval` commands share: datasets from command-line paths.
public enum TrainingJob {
    /// A dataset from a path: an ImageFolder directory, a `.csv` image list (single- or
    /// multi-label; `multiLabel` says what the training set is), or an `.npz` tensor file.
    public static func dataset(_ path: String, classes: [String]? = nil, multiLabel: Bool? = nil) throws -> any LabelledDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WconvError(.invalidInput, "dataset not found (give an ImageFolder directory, a .csv with path and label columns, or an .npz with 'images' and 'labels')", file: path)
        }
        if isDir.boolValue { return try ImageFolderDataset(root: path, classes: classes) }
        if path.lowercased().hasSuffix(".csv") { return try CSVDataset(path: path, classes: classes, multiLabel: multiLabel) }
        if multiLabel == true { throw WconvError(.invalidInput, "the training set is multi-label (a CSV); give the validation set as a CSV with the same label columns", file: path) }
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
        if let v = val { return (all, try dataset(v, classes: all.classes, multiLabel: all.isMultiLabel)) }
        if let f = valSplit {
            let (tr, va) = try DatasetSplit.stratified(labels: all.labels, classCount: all.classes.count, fraction: f, seed: seed)
            return (SubsetDataset(all, indices: tr), SubsetDataset(all, indices: va))
        }
        return (all, nil)
    }

    /// One line per class with its count, for the start-of-run summary.
    public static func summary(_ d: any LabelledDataset, name: String, unit: String = "images") -> String {
        if let t = d.multiLabelTargets { return multiLabelSummary(d, targets: t, name: name) }
        var counts = [Int](repeating: 0, count: d.classes.count)
        for l in d.labels where l >= 0 && l < counts.count { counts[l] += 1 }
        let parts = zip(d.classes, counts).prefix(12).map { "\($0) \($1)" }.joined(separator: ", ")
        var s = "\(name): \(d.count) \(unit), \(d.classes.count) classes (\(parts)\(d.classes.count > 12 ? ", …" : ""))"
        if let f = d as? ImageFolderDataset, !f.ignored.isEmpty { s += "; ignored \(f.ignored.count) non-image files (e.g. \(f.ignored[0]))" }
        if let mn = counts.min(), let mx = counts.max(), mn > 0, Double(mx) / Double(mn) >= 3 {
            s += "; imbalanced \(mx):\(mn) — consider --class-weights auto"
        }
        return s
    }
}

extension TrainingJob {
    /// Positives and uncertain labels per label, e.g. `disc 52+9?` (52 positive, 9 uncertain).
    static func multiLabelSummary(_ d: any LabelledDataset, targets t: [Float], name: String) -> String {
        let L = d.classes.count
        var pos = [Int](repeating: 0, count: L), unc = [Int](repeating: 0, count: L)
        for (k, v) in t.enumerated() { if v > 0 { pos[k % L] += 1 } else if v < 0 { unc[k % L] += 1 } }
        let parts = (0..<min(L, 14)).map { "\(d.classes[$0]) \(pos[$0])\(unc[$0] > 0 ? "+\(unc[$0])?" : "")" }.joined(separator: ", ")
        var s = "\(name): \(d.count) images, \(L) labels, multi-label (positives+uncertain?: \(parts)\(L > 14 ? ", …" : ""))"
        if let j = pos.firstIndex(of: 0) { s += "; label '\(d.classes[j])' has no positive" }
        return s
    }
}
