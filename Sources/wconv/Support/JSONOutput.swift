import Foundation

/// A JSON document for `--json` output: ordered objects so keys print in a stable, readable order.
enum JSONOut {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONOut])
    case object([(String, JSONOut)])

    /// Doubles that are not finite have no JSON spelling; they print as strings ("nan", "inf").
    static func number(_ d: Double) -> JSONOut {
        d.isFinite ? .double(d) : .string(d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf"))
    }

    /// Pretty-printed with two-space indentation.
    func render(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let closePad = String(repeating: "  ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
            return "\(d)"
        case .string(let s): return JSONOut.quote(s)
        case .array(let items):
            if items.isEmpty { return "[]" }
            // Short arrays of scalars (shapes) stay on one line.
            if items.count <= 8, items.allSatisfy({ $0.isScalar }) {
                return "[" + items.map { $0.render() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { pad + $0.render(indent: indent + 1) }.joined(separator: ",\n") + "\n" + closePad + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n" + members.map { pad + JSONOut.quote($0.0) + ": " + $0.1.render(indent: indent + 1) }.joined(separator: ",\n") + "\n" + closePad + "}"
        }
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Prints the document on stdout followed by a newline.
    func print() {
        Swift.print(render())
    }
}
