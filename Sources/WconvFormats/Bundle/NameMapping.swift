import OrderedCollections
import WconvTensor

/// Renaming every tensor (and alias) of a bundle with collision checks (`convert --rename`,
/// `--strip-prefix`).
public enum NameMapping {
    /// A named transformation of tensor names; the description heads its messages.
    public struct Rule {
        public var description: String
        public var transform: (String) -> String

        public init(description: String, transform: @escaping (String) -> String) {
            self.description = description
            self.transform = transform
        }
    }

    /// Wrapper prefixes that training frameworks add around a model's own names.
    public static let wrappers = ["module.", "_orig_mod.", "model.", "net.", "ema.", "state_dict."]

    /// The chain of wrapper prefixes every name starts with (`module.`, `module.model.`, …), or nil.
    public static func autoPrefix(_ names: [String]) -> String? {
        guard !names.isEmpty else { return nil }
        var prefix = ""
        while true {
            guard let w = wrappers.first(where: { w in names.allSatisfy { $0.hasPrefix(prefix + w) && $0.count > prefix.count + w.count } }) else { break }
            prefix += w
        }
        return prefix.isEmpty ? nil : prefix
    }

    /// Applies `rule` to every name; returns how many names changed. Two names that would become one
    /// are a usage error naming both; so is a name that would become empty.
    public static func apply(_ rule: Rule, to bundle: inout TensorBundle) throws -> Int {
        var renamed = OrderedDictionary<String, Tensor>()
        var from: [String: String] = [:]
        var changed = 0
        for (name, t) in bundle.tensors {
            let new = rule.transform(name)
            if new != name { changed += 1 }
            guard !new.isEmpty else {
                throw WconvError(.usage, "\(rule.description) turns \"\(name)\" into an empty name")
            }
            if let other = from[new] {
                throw WconvError(.usage, "\(rule.description) would give \"\(other)\" and \"\(name)\" the same name \"\(new)\"; adjust the rule")
            }
            from[new] = name
            renamed[new] = t
        }
        var aliases: [String: String] = [:]
        for (a, target) in bundle.aliases { aliases[rule.transform(a)] = rule.transform(target) }
        bundle.tensors = renamed
        bundle.aliases = aliases
        return changed
    }
}
