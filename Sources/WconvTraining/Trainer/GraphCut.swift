import OrderedCollections
import WconvGraph
import WconvTensor

/// Splits a graph at one value: `front` computes it from the graph inputs, `back` takes it as its
/// only input and produces the outputs. The frozen-feature cache runs `front` once per sample and
/// trains `back` only.
public enum GraphCut {
    public struct Split {
        public var front: ModelGraph
        public var back: ModelGraph
        public var value: String
    }

    /// The value feeding the first node that uses a parameter of `trainable`, moved up through
    /// dropout / identity / flatten / reshape producers (so a dropout stays in the trained part).
    public static func cutValue(_ graph: ModelGraph, trainable: Set<String>) -> String? {
        guard let first = graph.nodes.first(where: { $0.inputs.contains(where: trainable.contains) }) else { return nil }
        guard var v = first.inputs.first(where: { !$0.isEmpty && graph.parameters[$0] == nil }) else { return nil }
        var producer: [String: GraphNode] = [:]
        for n in graph.nodes { for o in n.outputs { producer[o] = n } }
        let movable: Set<Op> = [.dropout, .identity]
        while let p = producer[v], movable.contains(p.op), let x = p.inputs.first, graph.parameters[x] == nil { v = x }
        return v
    }

    /// Splits at `value`, or returns nil when the back part would need any other value of the front
    /// (a skip connection across the cut) or a graph input.
    public static func split(_ graph: ModelGraph, at value: String, rank: Int) -> Split? {
        var producer: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() { for o in n.outputs { producer[o] = i } }
        guard producer[value] != nil else { return nil }
        var frontSet = Set<Int>()
        var stack = [value]
        while let v = stack.popLast() {
            guard let i = producer[v], !frontSet.contains(i) else { continue }
            frontSet.insert(i)
            stack += graph.nodes[i].inputs.filter { !$0.isEmpty && graph.parameters[$0] == nil }
        }
        let frontNodes = graph.nodes.enumerated().filter { frontSet.contains($0.offset) }.map(\.element)
        let backNodes = graph.nodes.enumerated().filter { !frontSet.contains($0.offset) }.map(\.element)
        var available: Set<String> = [value]
        for n in backNodes {
            for i in n.inputs where !i.isEmpty && graph.parameters[i] == nil && !available.contains(i) { return nil }
            available.formUnion(n.outputs)
        }
        guard graph.outputs.allSatisfy({ available.contains($0.name) }) else { return nil }
        func sub(_ nodes: [GraphNode]) -> OrderedDictionary<String, Tensor> {
            let used = Set(nodes.flatMap(\.inputs))
            return graph.parameters.filter { used.contains($0.key) }
        }
        var front = graph
        front.nodes = frontNodes
        front.outputs = [ValueInfo(name: value, shape: [Int?](repeating: nil, count: rank))]
        front.parameters = sub(frontNodes)
        front.buffers = graph.buffers.filter { front.parameters[$0] != nil }
        var back = graph
        back.nodes = backNodes
        back.inputs = [ValueInfo(name: value, shape: [Int?](repeating: nil, count: rank))]
        back.parameters = sub(backNodes)
        back.buffers = graph.buffers.filter { back.parameters[$0] != nil }
        return Split(front: front, back: back, value: value)
    }
}
