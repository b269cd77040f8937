import WconvTensor

/// An inert value produced by `PickleDecoder`. Nothing in it can run code: classes are names,
/// instances are records of (class, args, state), and only allow-listed rebuilds (tensors, ordered
/// dicts, sets, …) were interpreted while decoding.
///
/// Mutable containers are reference types owned by a `PickleArena`; values are valid while the
/// `PickleResult` that produced them is alive.
public enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits: little-endian two's complement bytes (LONG1/LONG4).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    case set(PickleList)
    /// A class or function named by GLOBAL/STACK_GLOBAL — never imported, never called.
    case global(PickleGlobal)
    /// An instance of a class (NEWOBJ/INST/OBJ) or the inert record of a non-allow-listed call (REDUCE).
    case object(PickleObject)
    /// A storage referenced by a persistent id.
    case storage(PickleStorage)
    /// A tensor rebuilt by an allow-listed torch function.
    case tensor(PickleTensor)

    /// Short type name for messages.
    public var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .set: return "set"
        case .global(let g): return "global \(g.qualifiedName)"
        case .object(let o): return o.isCallRecord ? "result of \(o.global.qualifiedName)(…)" : "\(o.global.qualifiedName) object"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    public var asInt: Int? {
        switch self {
        case .int(let v): return v
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    public var asString: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Tuple or list items.
    public var sequenceItems: [PickleValue]? {
        switch self {
        case .tuple(let t): return t.items
        case .list(let l): return l.items
        default: return nil
        }
    }
}

/// Anything the arena can flatten when the decode result goes away.
protocol PickleContainer: AnyObject {
    func clearChildren()
}

/// Owns every container a decode created. Dropping deeply nested (or cyclic) trees through ARC would
/// recurse once per level and can overflow the stack on a hostile file; the arena instead empties
/// every container in one flat loop, so each node is freed with no nested releases.
public final class PickleArena {
    var containers: [PickleContainer] = []
    init() {}
    func add(_ c: PickleContainer) { containers.append(c) }
    public var count: Int { containers.count }
    deinit {
        for c in containers { c.clearChildren() }
    }
}

public final class PickleTuple: PickleContainer {
    public internal(set) var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
    func clearChildren() { items = [] }
}

public final class PickleList: PickleContainer {
    public internal(set) var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
    func clearChildren() { items = [] }
}

/// Hashable image of the dict keys that matter (str, int, bool, None, float); other keys never dedupe.
enum PickleKey: Hashable {
    case str(String), int(Int), none, float(UInt64)
    init?(_ v: PickleValue) {
        switch v {
        case .string(let s): self = .str(s)
        case .int(let i): self = .int(i)
        case .bool(let b): self = .int(b ? 1 : 0)
        case .none: self = .none
        case .float(let d): self = d == d.rounded() && abs(d) < 9e18 ? .int(Int(d)) : .float(d.bitPattern)
        default: return nil
        }
    }
}

/// A dict (also OrderedDict, defaultdict, Counter) in insertion order. Setting an existing key replaces
/// the value in place, as Python does.
public final class PickleDict: PickleContainer {
    public internal(set) var keys: [PickleValue] = []
    public internal(set) var values: [PickleValue] = []
    private var index: [PickleKey: Int] = [:]
    /// State given by BUILD (torch puts `_metadata` there); not part of the mapping.
    public internal(set) var attributes: PickleValue?
    /// The class that built it (`collections.OrderedDict`, `builtins.dict`, …).
    public let typeName: String

    init(typeName: String = "builtins.dict") { self.typeName = typeName }

    func set(_ key: PickleValue, _ value: PickleValue) {
        if let k = PickleKey(key) {
            if let i = index[k] { values[i] = value; return }
            index[k] = keys.count
        }
        keys.append(key)
        values.append(value)
    }

    public var count: Int { keys.count }

    /// Value for a string key.
    public subscript(key: String) -> PickleValue? {
        index[.str(key)].map { values[$0] }
    }

    public subscript(intKey key: Int) -> PickleValue? {
        index[.int(key)].map { values[$0] }
    }

    func clearChildren() { keys = []; values = []; index = [:]; attributes = nil }
}

/// An instance (`isCallRecord == false`) or the inert record of calling a non-allow-listed callable.
public final class PickleObject: PickleContainer {
    public let global: PickleGlobal
    public internal(set) var args: [PickleValue]
    /// BUILD state (usually the instance `__dict__`).
    public internal(set) var state: PickleValue?
    /// Items appended / set on dict- or list-subclass instances.
    public internal(set) var listItems: [PickleValue] = []
    public internal(set) var dictItems: PickleDict?
    /// True when this records a REDUCE call of `global` rather than an instance of it.
    public let isCallRecord: Bool

    init(global: PickleGlobal, args: [PickleValue], isCallRecord: Bool) {
        self.global = global
        self.args = args
        self.isCallRecord = isCallRecord
    }

    /// The attribute dict set by BUILD, if it was a dict (or a `(dict, slots)` pair).
    public var stateDict: PickleDict? {
        switch state {
        case .dict(let d)?: return d
        case .tuple(let t)?:
            for item in t.items { if case .dict(let d) = item { return d } }
            return nil
        default: return nil
        }
    }

    func clearChildren() { args = []; state = nil; listItems = []; dictItems = nil }
}

/// A storage named by a persistent id: the torch layer maps `key` to bytes.
public final class PickleStorage {
    /// Record name under `data/` (zip) or storage key (legacy).
    public let key: String
    /// Element type when the storage class names one (`FloatStorage`); nil for `UntypedStorage`.
    public let dtype: DType?
    /// torch spelling of the storage element type, for messages (`float32`, `complex64`, `uint8`).
    public let dtypeName: String
    /// Bytes per element of the storage class (1 for untyped storages).
    public let elementSize: Int
    /// Declared size: elements for typed storages, bytes for untyped ones.
    public let declaredCount: Int
    public let location: String
    /// Legacy storage views: (root key, element offset, element count).
    public let view: (key: String, offset: Int, count: Int)?

    public init(key: String, dtype: DType?, dtypeName: String, elementSize: Int, declaredCount: Int, location: String,
                view: (key: String, offset: Int, count: Int)? = nil) {
        self.key = key
        self.dtype = dtype
        self.dtypeName = dtypeName
        self.elementSize = elementSize
        self.declaredCount = declaredCount
        self.location = location
        self.view = view
    }

    /// Declared size in bytes (overflow-checked).
    public var declaredBytes: Int? {
        let (b, o) = declaredCount.multipliedReportingOverflow(by: elementSize)
        return o || declaredCount < 0 ? nil : b
    }
}

/// A tensor as the pickle describes it: a view of a storage. Offsets and strides are in elements.
public final class PickleTensor {
    public let storage: PickleStorage
    /// Element type (nil when torch's dtype has no wconv equivalent, e.g. complex).
    public let dtype: DType?
    public let dtypeName: String
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]
    public let requiresGrad: Bool
    public internal(set) var isParameter: Bool
    /// The class when rebuilt as a subclass through `_rebuild_from_type_v2` (nil for plain tensors).
    public internal(set) var subclass: String?

    init(storage: PickleStorage, dtype: DType?, dtypeName: String, offset: Int, shape: [Int], strides: [Int], requiresGrad: Bool) {
        self.storage = storage
        self.dtype = dtype
        self.dtypeName = dtypeName
        self.offset = offset
        self.shape = shape
        self.strides = strides
        self.requiresGrad = requiresGrad
        self.isParameter = false
    }
}
