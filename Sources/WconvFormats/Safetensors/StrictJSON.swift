import WconvTensor

/// A parsed JSON value. Objects keep their members in file order as (key, value) pairs so that
/// callers see exactly what the file says; the parser itself refuses duplicate keys.
///
/// Why not Foundation's `JSONSerialization`: it keeps only the last of two equal keys, which is the
/// parser differential the safetensors README and the Trail of Bits audit (TOB-SFTN-7) warn about.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    /// The number's text as written (validated JSON number syntax); callers convert as they need.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A short description of the value's type, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as a non-negative integer that fits in `Int`, like serde's `usize`
    /// (no sign, no fraction, no exponent).
    var nonNegativeInt: Int? {
        guard case .number(let s) = self, !s.isEmpty else { return nil }
        var v = 0
        for c in s.utf8 {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(c - 0x30))
            if o1 || o2 { return nil }
            v = a
        }
        return v
    }
}

/// A strict RFC 8259 JSON parser over bytes: UTF-8 validated, duplicate keys refused, nesting
/// bounded (serde_json's default limit of 128), no trailing content except whitespace.
struct StrictJSONParser {
    struct Failure: Error {
        var message: String
        var offset: Int
        /// Set when the failure is a repeated object key (the key is in `duplicateKey`).
        var duplicateKey: String? = nil
    }

    static let maxDepth = 128

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var depth = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON document occupying all of `bytes` (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var p = StrictJSONParser(bytes)
        p.skipWhitespace()
        let v = try p.parseValue()
        p.skipWhitespace()
        if p.pos != bytes.count {
            throw Failure(message: "unexpected content after the JSON value", offset: p.pos)
        }
        return v
    }

    static func parse(_ array: [UInt8]) throws -> JSONValue {
        try array.withUnsafeBytes { try parse($0) }
    }

    @inline(__always) private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func fail(_ message: String) -> Failure { Failure(message: message, offset: pos) }

    private mutating func parseValue() throws -> JSONValue {
        guard let c = peek() else { throw fail("unexpected end of JSON") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected byte 0x\(String(c, radix: 16)) where a JSON value was expected")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard bytes.count - pos >= n else { throw fail("truncated literal") }
        let w = word.utf8Start
        for i in 0..<n where bytes[pos + i] != w[i] { throw fail("invalid literal") }
        pos += n
    }

    private mutating func enter() throws {
        depth += 1
        if depth > StrictJSONParser.maxDepth { throw fail("JSON nested deeper than \(StrictJSONParser.maxDepth) levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        pos += 1
        var members: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw Failure(message: "duplicate key \"\(key)\"", offset: keyOffset, duplicateKey: key)
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            pos += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return .object(members)
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return .array(items)
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = pos
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), first >= 0x30, first <= 0x39 else { throw fail("invalid number") }
        if first == 0x30 {
            pos += 1
        } else {
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number: digit expected after '.'") }
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number: digit expected in exponent") }
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    }

    /// Parses a string; validates UTF-8 and escapes, refuses raw control characters.
    private mutating func parseString() throws -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        var sawEscape = false
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { sawEscape = true; break }
            if c < 0x20 { throw fail("control character 0x\(String(c, radix: 16)) inside a string") }
            pos += 1
        }
        guard pos < bytes.count else { throw fail("unterminated string") }
        if !sawEscape {
            let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<pos])
            guard let s = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else {
                throw Failure(message: "string is not valid UTF-8", offset: start)
            }
            pos += 1
            return s
        }
        var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw fail("control character 0x\(String(c, radix: 16)) inside a string") }
            if c != UInt8(ascii: "\\") { out.append(c); pos += 1; continue }
            pos += 1
            guard let e = peek() else { throw fail("unterminated escape") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard bytes.count - pos >= 2, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("lone high surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone low surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw Failure(message: "string is not valid UTF-8", offset: start)
        }
        return s
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard bytes.count - pos >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }
}

/// Serialises JSON text the way serde_json does (compact; `"`, `\` and control characters escaped,
/// everything else raw UTF-8), so headers match the reference writer byte for byte.
enum JSONText {
    static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
        return out
    }
}
