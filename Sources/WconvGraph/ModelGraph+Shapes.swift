import Foundation
import OrderedCollections
import WconvTensor

extension ModelGraph {
    /// Shapes of every graph input and node output for the given input shapes (graph inputs not
    /// listed must have fully known shapes). Throws `.invalidInput` naming the node, op and shapes
    /// at the first node whose inputs do not fit — before any compute.
    public func inferShapes(inputShapes: [String: [Int]]) throws -> [String: [Int]] {
        try inferShapes(inputShapes: inputShapes, allowUnknownOps: false)
    }

    /// With `allowUnknownOps`, nodes whose op has no shape rule (ops another builder added without
    /// registering a rule) and everything downstream of them are left out of the result instead of
    /// failing; every node with a rule is still checked.
    public func inferShapes(inputShapes: [String: [Int]], allowUnknownOps: Bool) throws -> [String: [Int]] {
        let spec = try specialize(inputShapes: inputShapes, allowUnknownOps: allowUnknownOps)
        var shapes: [String: [Int]] = [:]
        for input in inputs { shapes[input.name] = spec.shapes[input.name] }
        for node in nodes { for o in node.outputs where !o.isEmpty { if let s = spec.shapes[o] { shapes[o] = s } } }
        return shapes
    }

    /// Shapes used by `validate()` for dynamic input dims: batch 1, image height and width from the
    /// preprocessing (224 when unknown), other dims (sequence length) 1.
    public func probeInputShapes() -> [String: [Int]] {
        var result: [String: [Int]] = [:]
        for input in inputs {
            var s = input.shape.map { $0 ?? 1 }
            if s.count == 4 {
                let size = preprocessing?.inputSize ?? [224, 224]
                if input.shape[2] == nil { s[2] = size.first ?? 224 }
                if input.shape[3] == nil { s[3] = size.count > 1 ? size[1] : (size.first ?? 224) }
            }
            result[input.name] = s
        }
        return result
    }

    /// Structural checks (topological order, unique value names, every name resolvable, no
    /// dangling graph outputs or aliases) and then shape inference on probe shapes, so a bad graph
    /// is an error naming the node, op and shapes before any compute. A weights-only graph is valid.
    public func validate() throws { try validate(allowUnknownOps: false) }

    /// `allowUnknownOps`: see `inferShapes(inputShapes:allowUnknownOps:)`; used where a graph from
    /// another builder is stored or restored (the runtime refuses ops it cannot run).
    public func validate(allowUnknownOps: Bool) throws {
        if nodes.isEmpty {
            guard outputs.isEmpty else { throw WconvError.invalid("graph has outputs but no nodes") }
            return
        }
        var produced = Set(inputs.map(\.name))
        var nodeNames = Set<String>()
        for (alias, target) in aliases where parameters[target] == nil {
            throw WconvError.invalid("alias '\(alias)' points at '\(target)', which is not a parameter")
        }
        for b in buffers where parameters[b] == nil && aliases[b] == nil {
            throw WconvError.invalid("buffer '\(b)' is not a parameter")
        }
        for node in nodes {
            guard nodeNames.insert(node.name).inserted else {
                throw WconvError.invalid("two nodes are named '\(node.name)'")
            }
            guard !node.outputs.isEmpty else { throw WconvError.invalid("node '\(node.name)' (op \(node.op)) has no outputs") }
            for name in node.inputs where !name.isEmpty {
                if produced.contains(name) || parameters[name] != nil || aliases[name] != nil { continue }
                if nodes.contains(where: { $0.outputs.contains(name) }) {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)' before the node producing it: nodes are not in topological order")
                }
                throw WconvError.invalid("node '\(node.name)' (op \(node.op)) reads '\(name)', which is neither a graph input, a parameter, nor any node's output (dangling input)")
            }
            for name in node.outputs where !name.isEmpty {
                guard parameters[name] == nil else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) writes '\(name)', which is a parameter name")
                }
                guard produced.insert(name).inserted else {
                    throw WconvError.invalid("node '\(node.name)' (op \(node.op)) writes '\(name)', which is already produced elsewhere")
                }
            }
        }
        for out in outputs where !produced.contains(out.name) {
            throw WconvError.invalid("graph output '\(out.name)' is not produced by any node (dangling output)")
        }
        _ = try inferShapes(inputShapes: probeInputShapes(), allowUnknownOps: allowUnknownOps)
    }

    static func show(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
    }
}
