import Foundation
import WconvTensor

/// One raw sample before transforms: an RGB image (ImageFolder, uint8 tensors) or a ready
/// network input (float tensor datasets, taken as already preprocessed).
public enum RawSample: Sendable {
    case image(RGBImage)
    case tensor([Float], shape: [Int])
}

/// A labelled collection the loader can read from any thread.
public protocol LabelledDataset: Sendable {
    var count: Int { get }
    var labels: [Int] { get }
    var classes: [String] { get }
    /// Human-readable origin of sample `i` (file path or `tensor[i]`), for error messages.
    func describe(_ i: Int) -> String
    func load(_ i: Int) throws -> RawSample
    /// Multi-label targets, N×L row-major over `classes` (the labels): 1, 0, or −1 for uncertain;
    /// nil for single-label data (the default).
    var multiLabelTargets: [Float]? { get }
}

extension LabelledDataset {
    public var multiLabelTargets: [Float]? { nil }
    public var isMultiLabel: Bool { multiLabelTargets != nil }
}

/// A view of a dataset restricted to some indices (train/val split).
public struct SubsetDataset: LabelledDataset {
    public let base: any LabelledDataset
    public let indices: [Int]
    public init(_ base: any LabelledDataset, indices: [Int]) { self.base = base; self.indices = indices }
    public var count: Int { indices.count }
    public var labels: [Int] { indices.map { base.labels[$0] } }
    public var classes: [String] { base.classes }
    public func describe(_ i: Int) -> String { base.describe(indices[i]) }
    public func load(_ i: Int) throws -> RawSample { try base.load(indices[i]) }
    public var multiLabelTargets: [Float]? {
        guard let t = base.multiLabelTargets else { return nil }
        let L = base.classes.count
        return indices.flatMap { t[($0 * L)..<(($0 + 1) * L)] }
    }
}

public enum DatasetSplit {
    /// Seeded, stratified split: in each class, `fraction` of its samples (rounded, at least one
    /// when the class has two or more, never all of them) go to validation.
    public static func stratified(labels: [Int], classCount: Int, fraction: Double, seed: UInt64) throws -> (train: [Int], val: [Int]) {
        guard fraction > 0, fraction < 1 else {
            throw WconvError(.usage, "--val-split must be between 0 and 1 (exclusive), got \(fraction)")
        }
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, l) in labels.enumerated() where l >= 0 && l < classCount { byClass[l].append(i) }
        var train: [Int] = [], val: [Int] = []
        for (c, idx) in byClass.enumerated() {
            var idx = idx
            var rng = RNG(seed: seed, keys: 0x5EED_5917, UInt64(c))
            rng.shuffle(&idx)
            var k = Int((Double(idx.count) * fraction).rounded())
            if idx.count >= 2 { k = min(max(k, 1), idx.count - 1) } else { k = 0 }
            val += idx.prefix(k)
            train += idx.dropFirst(k)
        }
        return (train.sorted(), val.sorted())
    }
}
