import OrderedCollections

/// A JSON document: the one value type for every JSON wconv reads (safetensors headers, sharded
/// indexes, Keras configs, config.json, tokenizer files, JSONL datasets) or writes (`--json` output,
/// headers, indexes, provenance notes).
///
/// Objects keep their members in file (or insertion) order, and numbers keep whether they were
/// written as integers, so nothing a file says is lost and output prints in a stable order.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in `Int`.
    case int(Int)
    /// A number written as an integer above `Int.max` that fits in `UInt64` (a UInt64 seed), so
    /// every digit survives a round trip.
    case uint(UInt64)
    /// Any other number (including `-0`, integers beyond `UInt64` or below `Int.min`, and Python's
    /// NaN / Infinity literals).
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(OrderedDictionary<String, JSONValue>)

    /// An object from (key, value) pairs in the order given; a later repeat of a key replaces the
    /// value and keeps the first position.
    public static func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
        var o = OrderedDictionary<String, JSONValue>()
        for (k, v) in pairs { o[k] = v }
        return .object(o)
    }

    /// The member `key` of an object (nil for other values). Setting makes the value an object.
    public subscript(key: String) -> JSONValue? {
        get {
            if case .object(let o) = self { return o[key] }
            return nil
        }
        set {
            var o = object ?? [:]
            o[key] = newValue
            self = .object(o)
        }
    }
    public subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return nil
    }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var object: OrderedDictionary<String, JSONValue>? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { self == .null }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    /// The value as an `Int`: an integer, or a double with no fraction (Python writes `3.0` for some
    /// integer settings).
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d): return d
        default: return nil
        }
    }
    /// Exactly `count` ints: a list of that length, or a single int repeated (Keras accepts `3`
    /// for `(3, 3)`); nil otherwise.
    public func ints(count: Int) -> [Int]? {
        if let i = int { return [Int](repeating: i, count: count) }
        guard let a = array, a.count == count else { return nil }
        let v = a.compactMap { $0.int }
        return v.count == a.count ? v : nil
    }
    /// A list of ints (every element an int), else nil.
    public var intArray: [Int]? {
        guard let a = array else { return nil }
        let v = a.compactMap { $0.int }
        return v.count == a.count ? v : nil
    }
    /// A list of numbers (every element a number), else nil.
    public var doubleArray: [Double]? {
        guard let a = array else { return nil }
        let v = a.compactMap { $0.double }
        return v.count == a.count ? v : nil
    }
    /// The value as a non-negative integer written as one, like serde's `usize` (no sign, no
    /// fraction, no exponent; `-0` is a float there too).
    public var nonNegativeInt: Int? {
        if case .int(let i) = self, i >= 0 { return i }
        return nil
    }

    /// `.int`, `.uint` for an integer above `Int.max` (a UInt64 seed), or `.double` beyond both.
    public init<I: BinaryInteger>(_ i: I) {
        self = Int(exactly: i).map(JSONValue.int) ?? UInt64(exactly: i).map(JSONValue.uint) ?? .double(Double(i))
    }

    /// A short description of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .uint, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
}
