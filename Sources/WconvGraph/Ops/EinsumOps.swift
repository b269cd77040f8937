import WconvFormats
import WconvTensor

extension Op {
    /// ONNX Einsum over any number of operands; attr equation. Explicit (`bij,bjk->bik`) or implicit
    /// (`ij,jk`: the letters seen once, in alphabetical order) output; a letter repeated within an
    /// operand takes its diagonal. Every letter has one size across the operands. Ellipsis (`...`)
    /// is refused naming the equation.
    public static let einsum: Op = "einsum"
}

/// How an einsum walks its operands: the letters with the output's first (`outputCount` of them,
/// in output order) and the summed ones after, their sizes, and per operand the element stride of
/// each letter (0 when the operand lacks it; the sum of both strides for a repeated letter).
public struct EinsumPlan: Equatable, Sendable {
    public var letters: [Character]
    public var sizes: [Int]
    public var outputCount: Int
    public var strides: [[Int]]
    public var operands: [[Character]]
    public var outShape: [Int] { Array(sizes.prefix(outputCount)) }
}

/// Einsum (docs/adding-an-op.md).
public enum EinsumOps {
    static let schemas: [OpSchema] = [einsum]

    /// Parses `equation` for operands of `shapes`; the one reading shared by the shape rule and the
    /// runtime's kernel (which also uses it for the gradients: an operand's letters as the output).
    public static func plan(_ equation: String, _ shapes: [[Int]], fail: (String) -> Error) throws -> EinsumPlan {
        let eq = equation.filter { $0 != " " }
        guard !eq.contains(".") else { throw fail("einsum equation '\(equation)' uses an ellipsis ('...'), which wconv does not support; spell the dims out with letters") }
        let parts = eq.components(separatedBy: "->")
        guard parts.count <= 2 else { throw fail("einsum equation '\(equation)' has more than one '->'") }
        let operands = parts[0].split(separator: ",", omittingEmptySubsequences: false).map(Array.init)
        guard operands.count == shapes.count else {
            throw fail("einsum equation '\(equation)' names \(operands.count) operands but the node has \(shapes.count) inputs")
        }
        var size: [Character: Int] = [:]
        var count: [Character: Int] = [:]
        var order: [Character] = []
        for (k, (ops, shape)) in zip(operands, shapes).enumerated() {
            guard ops.count == shape.count else {
                throw fail("einsum equation '\(equation)': operand \(k) '\(String(ops))' has \(ops.count) letters but its input has rank \(shape.count) \(shape)")
            }
            for (c, d) in zip(ops, shape) {
                guard c.isASCII, c.isLetter else { throw fail("einsum equation '\(equation)': '\(c)' is not a letter") }
                if let s = size[c], s != d {
                    throw fail("einsum equation '\(equation)': letter '\(c)' has size \(s) and \(d)")
                }
                if size[c] == nil { order.append(c) }
                size[c] = d
                count[c, default: 0] += 1
            }
        }
        let out: [Character]
        if parts.count == 2 {
            out = Array(parts[1])
            for c in out {
                guard size[c] != nil else { throw fail("einsum equation '\(equation)': output letter '\(c)' is in no operand") }
            }
            guard Set(out).count == out.count else { throw fail("einsum equation '\(equation)' repeats a letter in the output") }
        } else {
            out = order.filter { count[$0] == 1 }.sorted()
        }
        let letters = out + order.filter { !out.contains($0) }
        let strides = zip(operands, shapes).map { ops, shape -> [Int] in
            var st = [Int](repeating: 0, count: letters.count), acc = 1
            for i in stride(from: ops.count - 1, through: 0, by: -1) {
                st[letters.firstIndex(of: ops[i])!] += acc
                acc *= shape[i]
            }
            return st
        }
        return EinsumPlan(letters: letters, sizes: letters.map { size[$0]! }, outputCount: out.count, strides: strides, operands: operands)
    }

    static let einsum = OpSchema(.einsum, onnx: ["Einsum": { ctx, n in
        guard let eq = n.string("equation") else { ctx.unsupported.append(ctx.unsupportedNode(n, "no equation attribute")); return }
        ctx.emit(n, .einsum, inputs: n.inputs, outputs: [n.outputs[0]], ["equation": .string(eq)])
    }], onnxExport: { e, n in
        let eq = n.string("equation") ?? ""
        // The output rank, when the equation is explicit (the exporter declares outputs by rank).
        let rank = eq.components(separatedBy: "->").dropFirst().first.map { $0.filter(\.isLetter).count }
        e.add("Einsum", n.name, n.inputs, [n.outputs[0]], ["equation": .string(eq)], rank: rank)
    }) { a in
        guard let eq = a.node.string("equation") else { throw a.fail("no equation attribute") }
        let shapes = try a.node.inputs.indices.map { try a.need($0) }
        let p = try plan(eq, shapes, fail: a.fail)
        return [try a.bounded(p.outShape)]
    }
}
