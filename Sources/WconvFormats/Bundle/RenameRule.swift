import Foundation
import WconvTensor

/// A sed-style rename rule, `s/PATTERN/REPLACEMENT/[g]` (any delimiter after the `s`).
/// PATTERN is an ICU regular expression; in REPLACEMENT `\1`…`\9` are groups and `&` the whole match.
/// Without `g` only the first match in each name is replaced, as in sed (`convert --rename`).
public struct RenameRule {
    /// The rule as written.
    public let text: String
    let regex: NSRegularExpression
    let template: String
    let global: Bool

    /// Parses a rule; a malformed one is a usage error naming it.
    public init(_ text: String) throws {
        self.text = text
        func usage(_ why: String) -> WconvError {
            WconvError(.usage, "--rename '\(text)': \(why); write rules like 's/^module\\.//' or 's/^(layer\\d)\\./\\1_/g'")
        }
        var chars = Array(text)
        guard chars.count >= 4, chars[0] == "s" else { throw usage("a rule starts with s and a delimiter") }
        let delim = chars[1]
        chars.removeFirst(2)
        // Split on unescaped delimiters.
        var parts: [String] = [""]
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\\" && i + 1 < chars.count {
                if chars[i + 1] == delim { parts[parts.count - 1].append(delim) } else { parts[parts.count - 1] += "\\\(chars[i + 1])" }
                i += 2
                continue
            }
            if c == delim { parts.append("") } else { parts[parts.count - 1].append(c) }
            i += 1
        }
        guard parts.count == 3 else { throw usage("expected three parts separated by '\(delim)', found \(parts.count)") }
        guard parts[2].allSatisfy({ $0 == "g" }) else { throw usage("unknown flag in \"\(parts[2])\" (only g is supported)") }
        global = parts[2].contains("g")
        do {
            regex = try NSRegularExpression(pattern: parts[0])
        } catch {
            throw usage("invalid regular expression \"\(parts[0])\"")
        }
        // sed replacement → NSRegularExpression template.
        var t = ""
        let r = Array(parts[1])
        var j = 0
        while j < r.count {
            let c = r[j]
            if c == "\\" && j + 1 < r.count {
                let n = r[j + 1]
                if n.isNumber { t += "$\(n)" } else if n == "\\" { t += "\\\\" } else if n == "$" { t += "\\$" } else { t.append(n) }
                j += 2
                continue
            }
            if c == "&" { t += "$0" } else if c == "$" { t += "\\$" } else { t.append(c) }
            j += 1
        }
        template = t
    }

    /// The renamed name (unchanged when the pattern does not match).
    public func apply(_ name: String) -> String {
        let ns = name as NSString
        let full = NSRange(location: 0, length: ns.length)
        if global {
            return regex.stringByReplacingMatches(in: name, range: full, withTemplate: template)
        }
        guard let m = regex.firstMatch(in: name, range: full) else { return name }
        let replacement = regex.replacementString(for: m, in: name, offset: 0, template: template)
        return ns.replacingCharacters(in: m.range, with: replacement)
    }
}
