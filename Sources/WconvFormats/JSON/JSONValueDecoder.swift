import OrderedCollections

/// Decodable types read from a parsed `JSONValue`, so typed metadata (the canonical graph,
/// preprocessing, labels) goes through the one parser and its options like every other JSON.
///
/// As Foundation's `JSONDecoder`: a number converts to any numeric type that holds it exactly (`3`
/// and `3.0` are both an `Int` 3); a missing or null member is a nil optional; other mismatches
/// are `DecodingError`s with the coding path.
public struct JSONValueDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try ValueDecoder.unbox(value, as: type, path: [])
    }
}

/// The decoder over one value; containers hand nested values to new ones.
private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw Self.mismatch([String: Any].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedContainer<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw Self.mismatch([Any].self, value, codingPath) }
        return UnkeyedContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleContainer(value: value, codingPath: codingPath) }

    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(type), found \(value.typeName)"))
    }

    /// Scalars directly; anything else through its own `init(from:)`.
    static func unbox<T: Decodable>(_ value: JSONValue, as type: T.Type, path: [CodingKey]) throws -> T {
        func number<N>(_ convert: (JSONValue) -> N?) throws -> T {
            guard let n = convert(value) else { throw mismatch(type, value, path) }
            return n as! T
        }
        func integer<I: FixedWidthInteger>(_: I.Type) throws -> T {
            try number { v -> I? in
                switch v {
                case .int(let i): return I(exactly: i)
                case .uint(let u): return I(exactly: u)
                case .double(let d): return I(exactly: d)
                default: return nil
                }
            }
        }
        switch type {
        case is Bool.Type: return try number { $0.bool }
        case is String.Type: return try number { $0.string }
        case is Double.Type: return try number { $0.double }
        case is Float.Type: return try number { $0.double.map(Float.init) }
        case is Int.Type: return try integer(Int.self)
        case is Int8.Type: return try integer(Int8.self)
        case is Int16.Type: return try integer(Int16.self)
        case is Int32.Type: return try integer(Int32.self)
        case is Int64.Type: return try integer(Int64.self)
        case is UInt.Type: return try integer(UInt.self)
        case is UInt8.Type: return try integer(UInt8.self)
        case is UInt16.Type: return try integer(UInt16.self)
        case is UInt32.Type: return try integer(UInt32.self)
        case is UInt64.Type: return try integer(UInt64.self)
        default: return try T(from: ValueDecoder(value: value, codingPath: path))
        }
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: OrderedDictionary<String, JSONValue>
    let codingPath: [CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    func member(_ key: Key) throws -> JSONValue {
        guard let v = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no member \"\(key.stringValue)\""))
        }
        return v
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key).isNull }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try ValueDecoder.unbox(member(key), as: type, path: codingPath + [key])
    }
    func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
        try ValueDecoder(value: member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { ValueDecoder(value: members["super"] ?? .null, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder { ValueDecoder(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key]) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    /// The next element, advancing past it.
    mutating func next() throws -> (JSONValue, [CodingKey]) {
        let path = codingPath + [IndexKey(intValue: currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: path, debugDescription: "the array has only \(items.count) elements"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], path)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (v, path) = try next()
        return try ValueDecoder.unbox(v, as: type, path: path)
    }
    mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
        let (v, path) = try next()
        return try ValueDecoder(value: v, codingPath: path).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (v, path) = try next()
        return try ValueDecoder(value: v, codingPath: path).unkeyedContainer()
    }
    mutating func superDecoder() throws -> Decoder {
        let (v, path) = try next()
        return ValueDecoder(value: v, codingPath: path)
    }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    func decodeNil() -> Bool { value.isNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder.unbox(value, as: type, path: codingPath) }
}

/// An array position in a coding path.
private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}
