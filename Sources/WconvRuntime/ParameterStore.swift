import OrderedCollections
import WconvGraph
import WconvTensor

/// Float32 working copies of a graph's parameters and buffers, converted once at session build.
/// Pointers stay valid for the store's lifetime (the trainer's optimizers update them in place).
final class ParameterStore {
    struct Entry {
        var pointer: UnsafeMutablePointer<Float>
        var count: Int
        var shape: [Int]
        /// False for an entry borrowed from `lender` (freed by the lender, never written here).
        var owned = true
    }
    private(set) var entries: OrderedDictionary<String, Entry> = [:]
    /// The store whose buffers this one reads without copying (kept alive while they are used).
    private let lender: ParameterStore?

    init() { lender = nil }

    /// Copies every parameter of `graph` as f32 (aliases resolve to their target's values).
    convenience init(graph: ModelGraph) {
        self.init()
        for (name, t) in graph.parameters { add(name, tensor: t) }
        for (alias, target) in graph.aliases where entries[alias] == nil {
            if let t = graph.parameters[target] { add(alias, tensor: t) }
        }
        // The weights now live here: a model file's pages read for the copy leave the resident set
        // (a model's size of memory, 440 MB for BERT-base; PyTorch frees its state dict likewise).
        var files: [ObjectIdentifier: MappedFile] = [:]
        for t in graph.parameters.values { if let f = t.storage.mappedFile { files[ObjectIdentifier(f)] = f } }
        for f in files.values { f.dropResidentPages() }
    }

    /// Every entry of `lender` by pointer, no copy: what the lender's owner writes (a training
    /// session's optimizer steps, BN running statistics) is what this store reads. Entries added
    /// later (folded weights) are this store's own.
    init(borrowing lender: ParameterStore) {
        self.lender = lender
        for (name, e) in lender.entries { var b = e; b.owned = false; entries[name] = b }
    }

    func add(_ name: String, tensor: Tensor) {
        let values = tensor.dtype == .f32 ? tensor.floats() : tensor.converted(to: .f32).tensor.floats()
        add(name, values: values, shape: tensor.shape)
    }

    /// Sets an entry. An owned entry of the same size is overwritten in place, so its pointer (held
    /// by planned steps) stays valid when derived values are recomputed.
    func add(_ name: String, values: [Float], shape: [Int]) {
        if let old = entries[name], old.owned, old.count == values.count {
            values.withUnsafeBufferPointer { if let b = $0.baseAddress { old.pointer.update(from: b, count: values.count) } }
            entries[name]!.shape = shape
            return
        }
        if let old = entries[name], old.owned { old.pointer.deallocate() }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { if let b = $0.baseAddress { p.update(from: b, count: values.count) } }
        entries[name] = Entry(pointer: p, count: values.count, shape: shape)
    }

    subscript(name: String) -> Entry? { entries[name] }

    func tensor(_ name: String) -> Tensor? {
        guard let e = entries[name] else { return nil }
        return Tensor(shape: e.shape, floats: Array(UnsafeBufferPointer(start: e.pointer, count: e.count)))
    }

    deinit { for e in entries.values where e.owned { e.pointer.deallocate() } }
}
