import OrderedCollections
import WconvTensor

/// What a JSON parse accepts beyond RFC 8259 syntax, which is always enforced (UTF-8 validated,
/// escapes and surrogates checked, no raw control characters, no trailing content). Start from a
/// preset and change what differs.
public struct JSONParseOptions: Sendable {
    /// Refuse an object that names a key twice (else the last value wins, at the first position).
    public var refuseDuplicateKeys: Bool
    /// Accept `NaN`, `Infinity` and `-Infinity`, which Python's `json.dump` writes for non-finite floats.
    public var allowNonFiniteLiterals: Bool
    /// Deepest nesting of arrays and objects accepted, so hostile input cannot exhaust the stack.
    public var maxDepth: Int

    /// For files whose readers disagree on ambiguity (safetensors headers, checkpoint indexes):
    /// duplicate keys refused — Foundation and serde keep different ones of the two, the parser
    /// differential the safetensors audit (TOB-SFTN-7) warns about — and serde_json's depth limit.
    public static let strict = JSONParseOptions(refuseDuplicateKeys: true, allowNonFiniteLiterals: false, maxDepth: 128)
    /// What Python's `json.loads` reads (Keras configs, config.json, tokenizer files, JSONL data):
    /// NaN / Infinity literals, the last of two equal keys.
    public static let python = JSONParseOptions(refuseDuplicateKeys: false, allowNonFiniteLiterals: true, maxDepth: 512)
}

/// Why a JSON parse failed, at which byte of the input.
public struct JSONParseError: Error, Sendable {
    public var message: String
    public var offset: Int
    /// Set when the failure is a repeated object key.
    public var duplicateKey: String?
}

extension JSONValue {
    /// Parses one JSON document occupying all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: JSONParseOptions) throws -> JSONValue {
        var p = JSONParser(bytes, options)
        p.skipWhitespace()
        let v = try p.parseValue()
        p.skipWhitespace()
        if p.pos != bytes.count { throw p.fail("unexpected content after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], options: JSONParseOptions) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, options: options) }
    }

    /// Parses, reporting failure as an invalid-input error "`what` is not valid JSON: … at byte N"
    /// naming `file`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, what: String, file: String?,
                             options: JSONParseOptions = .python) throws -> JSONValue {
        do {
            return try parse(bytes, options: options)
        } catch let f as JSONParseError {
            throw WconvError.invalid("\(what) is not valid JSON: \(f.message) at byte \(f.offset)", file: file)
        }
    }

    public static func parse(_ text: String, what: String, file: String?, options: JSONParseOptions = .python) throws -> JSONValue {
        var s = text
        return try s.withUTF8 { try parse(UnsafeRawBufferPointer($0), what: what, file: file, options: options) }
    }
}

/// A recursive-descent parser over bytes; see `JSONParseOptions` for what it accepts.
struct JSONParser {
    private let bytes: UnsafeRawBufferPointer
    private let options: JSONParseOptions
    private(set) var pos = 0
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer, _ options: JSONParseOptions) {
        self.bytes = bytes
        self.options = options
    }

    @inline(__always) private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    func fail(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: pos) }

    mutating func parseValue() throws -> JSONValue {
        guard let c = peek() else { throw fail("unexpected end of JSON") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "N") where options.allowNonFiniteLiterals: try expectLiteral("NaN"); return .double(.nan)
        case UInt8(ascii: "I") where options.allowNonFiniteLiterals: try expectLiteral("Infinity"); return .double(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
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
        if depth > options.maxDepth { throw fail("JSON nested deeper than \(options.maxDepth) levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        pos += 1
        var members = OrderedDictionary<String, JSONValue>()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try parseString()
            if options.refuseDuplicateKeys, members[key] != nil {
                throw JSONParseError(message: "duplicate key \"\(key)\"", offset: keyOffset, duplicateKey: key)
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            pos += 1
            skipWhitespace()
            members[key] = try parseValue()
            if try closes(UInt8(ascii: "}"), in: "an object") { return .object(members) }
        }
    }

    /// After a member or element: true past the closing bracket, false past a comma.
    private mutating func closes(_ bracket: UInt8, in container: String) throws -> Bool {
        skipWhitespace()
        switch peek() {
        case UInt8(ascii: ","): pos += 1; return false
        case bracket: pos += 1; return true
        default: throw fail("expected ',' or '\(Character(Unicode.Scalar(bracket)))' in \(container)")
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
            if try closes(UInt8(ascii: "]"), in: "an array") { return .array(items) }
        }
    }

    /// RFC 8259 number syntax. Integers that fit stay `.int` (above `Int.max`, `.uint` while they fit
    /// in UInt64); `-0` is a double, as serde_json reads it.
    private mutating func parseNumber() throws -> JSONValue {
        let start = pos
        if peek() == UInt8(ascii: "-") {
            pos += 1
            if options.allowNonFiniteLiterals, peek() == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return .double(-.infinity)
            }
        }
        guard let first = peek(), first >= 0x30, first <= 0x39 else { throw fail("invalid number") }
        if first == 0x30 {
            pos += 1
        } else {
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number: digit expected after '.'") }
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard let c = peek(), c >= 0x30, c <= 0x39 else { throw fail("invalid number: digit expected in exponent") }
            while let c = peek(), c >= 0x30, c <= 0x39 { pos += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInteger, let i = Int(text), !(i == 0 && bytes[start] == UInt8(ascii: "-")) { return .int(i) }
        if isInteger, bytes[start] != UInt8(ascii: "-"), let u = UInt64(text) { return .uint(u) }
        guard let d = Double(text) else { throw JSONParseError(message: "number '\(text)' is out of range", offset: start) }
        return .double(d)
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
                throw JSONParseError(message: "string is not valid UTF-8", offset: start)
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
            throw JSONParseError(message: "string is not valid UTF-8", offset: start)
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
