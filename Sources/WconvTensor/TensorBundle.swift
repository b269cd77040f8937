import OrderedCollections

/// What a reader returns: named tensors in file order, plus what else the file said.
public struct TensorBundle: Sendable {
    /// Tensors by name, in the order the file lists them.
    public var tensors: OrderedDictionary<String, Tensor>
    /// The format that was read (`pytorch-zip`, `pytorch-legacy`, `torchscript`, `safetensors`, `onnx`, `keras-h5`, …).
    public var format: String
    /// String metadata carried by the file (safetensors `__metadata__`, ONNX metadata_props, …).
    public var metadata: [String: String]
    /// Tied tensors: alias name → name of the tensor that holds the storage.
    public var aliases: [String: String]
    /// Human-readable notes on what else the file holds (optimizer state, epoch, …), key → summary.
    public var extras: OrderedDictionary<String, String>
    /// Classes the pickle referenced that were turned into inert stubs (`module.name`).
    public var stubbedGlobals: [String]
    /// Every global the pickle referenced, allowed or not.
    public var globalsSeen: [String]
    /// Warnings a reader wants the user to see.
    public var warnings: [String]

    public init(format: String, tensors: OrderedDictionary<String, Tensor> = [:]) {
        self.tensors = tensors
        self.format = format
        self.metadata = [:]
        self.aliases = [:]
        self.extras = [:]
        self.stubbedGlobals = []
        self.globalsSeen = []
        self.warnings = []
    }

    public var totalBytes: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }
    public var totalElements: Int { tensors.values.reduce(0) { $0 + $1.numel } }

    /// Groups of names whose tensors share one storage object (tied weights), each in bundle order.
    public func sharedStorageGroups() -> [[String]] {
        var groups: [ObjectIdentifier: [String]] = [:]
        var order: [ObjectIdentifier] = []
        for (name, t) in tensors {
            let id = ObjectIdentifier(t.storage)
            if groups[id] == nil { order.append(id) }
            groups[id, default: []].append(name)
        }
        return order.compactMap { groups[$0] }.filter { $0.count > 1 }
    }
}
