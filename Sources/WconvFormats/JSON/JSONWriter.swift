/// How JSON text is laid out. Every JSON wconv writes goes through `JSONValue.text(_:)` with one of
/// the presets below (change a preset's members for another layout), so quoting and number spelling
/// are the same everywhere.
public struct JSONWriteOptions: Sendable {
    /// Spaces per nesting level; 0 writes everything on one line with no spaces (serde_json's
    /// compact form).
    public var indent: Int
    /// When indenting, arrays of at most this many scalars stay on one line (shapes read better so).
    public var inlineScalarArrays: Int
    /// When indenting, arrays of numbers of any length stay on one line (token ids, matrix rows).
    public var inlineNumberArrays: Bool
    /// Escape every non-ASCII character as `\uXXXX` (UTF-16), as Python's `ensure_ascii=True` does.
    public var asciiOnly: Bool
    /// How NaN and ±infinity are spelled: Python's literals (`NaN`, `Infinity`, `-Infinity`), which
    /// only lenient readers accept, or the strings "nan", "inf", "-inf", which every reader accepts.
    public var nonFiniteAsStrings: Bool

    /// One line, raw UTF-8: safetensors headers (byte for byte as serde_json), provenance notes.
    public static let compact = JSONWriteOptions(indent: 0, inlineScalarArrays: 0, inlineNumberArrays: false, asciiOnly: false, nonFiniteAsStrings: false)
    /// The CLI's `--json` documents: two-space indent, number arrays and short scalar arrays on one
    /// line, strict JSON.
    public static let pretty = JSONWriteOptions(indent: 2, inlineScalarArrays: 8, inlineNumberArrays: true, asciiOnly: false, nonFiniteAsStrings: true)
    /// Python's `json.dump(obj, f, indent=2)` (huggingface_hub's index files).
    public static let pythonIndented = JSONWriteOptions(indent: 2, inlineScalarArrays: 0, inlineNumberArrays: false, asciiOnly: true, nonFiniteAsStrings: false)
}

extension JSONValue {
    /// The value as JSON text laid out as `options` says.
    public func text(_ options: JSONWriteOptions = .compact) -> String {
        var out = ""
        write(into: &out, options, level: 0)
        return out
    }

    /// Compact JSON text (for provenance notes, messages and round trips).
    public var serialized: String { text(.compact) }

    private var isNumber: Bool {
        switch self {
        case .int, .uint, .double: return true
        default: return false
        }
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    private func write(into out: inout String, _ o: JSONWriteOptions, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d):
            if d.isFinite {
                out += "\(d)"
            } else if o.nonFiniteAsStrings {
                out += d.isNaN ? "\"nan\"" : (d > 0 ? "\"inf\"" : "\"-inf\"")
            } else {
                out += d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity")
            }
        case .string(let s): JSONValue.quote(s, asciiOnly: o.asciiOnly, into: &out)
        case .array(let items):
            let inline = o.indent == 0 || (items.count <= o.inlineScalarArrays && items.allSatisfy(\.isScalar))
                || (o.inlineNumberArrays && items.allSatisfy(\.isNumber))
            writeContainer("[", "]", items, inline: inline, o, level: level, into: &out) { item, out in
                item.write(into: &out, o, level: level + 1)
            }
        case .object(let members):
            writeContainer("{", "}", Array(members), inline: o.indent == 0, o, level: level, into: &out) { member, out in
                JSONValue.quote(member.key, asciiOnly: o.asciiOnly, into: &out)
                out += o.indent == 0 ? ":" : ": "
                member.value.write(into: &out, o, level: level + 1)
            }
        }
    }

    /// Writes `open items close`: on one line separated by `,` (`, ` when indenting), or one item a
    /// line; empty containers are always `[]` / `{}`.
    private func writeContainer<T>(_ open: String, _ close: String, _ items: [T], inline: Bool, _ o: JSONWriteOptions,
                                   level: Int, into out: inout String, _ item: (T, inout String) -> Void) {
        out += open
        defer { out += close }
        if items.isEmpty { return }
        if inline {
            for (k, x) in items.enumerated() {
                if k > 0 { out += o.indent == 0 ? "," : ", " }
                item(x, &out)
            }
            return
        }
        let pad = String(repeating: " ", count: o.indent * (level + 1))
        for (k, x) in items.enumerated() {
            out += k > 0 ? ",\n" : "\n"
            out += pad
            item(x, &out)
        }
        out += "\n" + String(repeating: " ", count: o.indent * level)
    }

    /// The one JSON string quoter: `"` and `\` escaped, control characters as `\n \r \t \b \f` or
    /// `\u00xx`, everything else raw UTF-8 (serde_json, Python with `ensure_ascii=False`) or, with
    /// `asciiOnly`, non-ASCII and DEL as UTF-16 `\uxxxx` escapes (Python's default).
    public static func quote(_ s: String, asciiOnly: Bool = false, into out: inout String) {
        out += "\""
        // Most strings (tensor names, dtypes, paths) need no escape: appended whole, not scalar by
        // scalar (the scalar loop was ≈ 1 % of a ResNet-50 convert's `perf` samples, for its header).
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && (!asciiOnly || $0 < 0x7F) }) {
            out += s
            out += "\""
            return
        }
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
                if u.value < 0x20 || (asciiOnly && u.value >= 0x7F) {
                    for unit in String(u).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    /// `s` as a quoted JSON string.
    public static func quoted(_ s: String, asciiOnly: Bool = false) -> String {
        var out = ""
        quote(s, asciiOnly: asciiOnly, into: &out)
        return out
    }
}
