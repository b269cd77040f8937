import OrderedCollections

extension JSONValue {
    /// The JSON form of an `Encodable` value, so report types print through the one writer.
    ///
    /// Members come in the order `encode(to:)` writes them (for synthesized conformances, the order
    /// the properties are declared: the type is the schema); a `Dictionary`'s keys are sorted, since
    /// its own order changes from run to run. nil optionals are left out, as `JSONEncoder` does.
    /// Floats keep their short spelling (`0.1`, not `0.10000000149011612`).
    public init<T: Encodable>(encoding value: T) throws {
        let root = EncodingNode()
        try root.encode(value, path: [])
        self = root.value
    }
}

/// One value under construction; containers hand out child nodes that are filled in later.
private final class EncodingNode {
    enum Content {
        case empty
        case scalar(JSONValue)
        case object(OrderedDictionary<String, EncodingNode>, sorted: Bool)
        case array([EncodingNode])
    }
    var content = Content.empty

    var value: JSONValue {
        switch content {
        case .empty: return .object([:])
        case .scalar(let v): return v
        case .array(let items): return .array(items.map(\.value))
        case .object(let members, let sorted):
            var o = OrderedDictionary<String, JSONValue>()
            let keys = sorted ? members.keys.sorted() : Array(members.keys)
            for k in keys { o[k] = members[k]!.value }
            return .object(o)
        }
    }

    func encode<T: Encodable>(_ v: T, path: [CodingKey]) throws {
        switch v {
        case let x as Bool: content = .scalar(.bool(x))
        case let x as String: content = .scalar(.string(x))
        case let x as Double: content = .scalar(.double(x))
        case let x as Float: content = .scalar(.double(Double("\(x)") ?? Double(x)))
        case let x as any BinaryInteger: content = .scalar(JSONValue(x))
        default: try v.encode(to: NodeEncoder(node: self, codingPath: path))
        }
    }

    func child(_ key: String, sortedKeys: Bool) -> EncodingNode {
        var members: OrderedDictionary<String, EncodingNode> = [:]
        var sorted = sortedKeys
        if case .object(let m, let s) = content { members = m; sorted = s }
        let n = EncodingNode()
        members[key] = n
        content = .object(members, sorted: sorted)
        return n
    }

    func appended() -> EncodingNode {
        var items: [EncodingNode] = []
        if case .array(let a) = content { items = a }
        let n = EncodingNode()
        items.append(n)
        content = .array(items)
        return n
    }
}

private struct NodeEncoder: Encoder {
    let node: EncodingNode
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        // Dictionary<String, _> encodes through the standard library's private key type.
        let sorted = String(describing: Key.self).contains("DictionaryCodingKey")
        if case .object = node.content {} else { node.content = .object([:], sorted: sorted) }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(node: node, codingPath: codingPath, sorted: sorted))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if case .array = node.content {} else { node.content = .array([]) }
        return UnkeyedNodeContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleNodeContainer(node: node, codingPath: codingPath) }
}

private struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    let codingPath: [CodingKey]
    let sorted: Bool

    mutating func encodeNil(forKey key: Key) throws { node.child(key.stringValue, sortedKeys: sorted).content = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try node.child(key.stringValue, sortedKeys: sorted).encode(value, path: codingPath + [key])
    }
    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
        NodeEncoder(node: node.child(key.stringValue, sortedKeys: sorted), codingPath: codingPath + [key]).container(keyedBy: N.self)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        NodeEncoder(node: node.child(key.stringValue, sortedKeys: sorted), codingPath: codingPath + [key]).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder {
        NodeEncoder(node: node.child("super", sortedKeys: sorted), codingPath: codingPath)
    }
    mutating func superEncoder(forKey key: Key) -> Encoder {
        NodeEncoder(node: node.child(key.stringValue, sortedKeys: sorted), codingPath: codingPath + [key])
    }
}

private struct UnkeyedNodeContainer: UnkeyedEncodingContainer {
    let node: EncodingNode
    let codingPath: [CodingKey]
    var count: Int { if case .array(let a) = node.content { return a.count }; return 0 }

    mutating func encodeNil() throws { node.appended().content = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.appended().encode(value, path: codingPath) }
    mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type) -> KeyedEncodingContainer<N> {
        NodeEncoder(node: node.appended(), codingPath: codingPath).container(keyedBy: N.self)
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        NodeEncoder(node: node.appended(), codingPath: codingPath).unkeyedContainer()
    }
    mutating func superEncoder() -> Encoder { NodeEncoder(node: node.appended(), codingPath: codingPath) }
}

private struct SingleNodeContainer: SingleValueEncodingContainer {
    let node: EncodingNode
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { node.content = .scalar(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.encode(value, path: codingPath) }
}
