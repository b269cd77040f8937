import OrderedCollections
import WconvTensor

/// Writes an `ONNXModel` as a .onnx file that onnx.checker and onnxruntime accept: every proto2 scalar
/// that must be present is written explicitly (ir_version, opset versions, elem_type), nodes go out in
/// topological order, tensors as raw_data; when the initializers pass `externalDataThreshold` bytes the
/// ones of 1 KiB or more move to `<file>.data` beside the model (64-byte aligned offsets), since one
/// serialized protobuf must stay under 2 GiB. Both files are written atomically.
public enum ONNXWriter {
    /// About 1.8 GB: leaves room under protobuf's 2 GiB limit for the graph itself.
    public static let defaultExternalDataThreshold = 1_800_000_000

    public static func write(_ model: ONNXModel, to path: String, externalDataThreshold: Int = defaultExternalDataThreshold) throws {
        for v in model.graph.inputs where model.graph.initializers[v.name] == nil {
            guard v.elemType != 0 else {
                throw WconvError(.runtime, "graph input '\(v.name)' has no element type; onnxruntime refuses untyped inputs", file: path)
            }
        }
        let total = model.graph.initializers.values.reduce(0) { $0 + $1.byteCount }
        var external: [String: (offset: Int, length: Int)] = [:]
        var dataName: String?
        if total > externalDataThreshold {
            let base = path.split(separator: "/").last.map(String.init) ?? path
            dataName = base + ".data"
            var offset = 0
            for (name, t) in model.graph.initializers where t.byteCount >= 1024 {
                offset = (offset + 63) / 64 * 64
                external[name] = (offset, t.byteCount)
                offset += t.byteCount
            }
        }
        let message = try encode(model, external: external, location: dataName)
        if let dataName {
            let dataPath = (path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) + "/" : "") + dataName
            try AtomicFileWriter.write(to: dataPath) { w in
                for (name, t) in model.graph.initializers {
                    guard let e = external[name] else { continue }
                    try w.writeZeros(e.offset - w.offset)
                    try t.withContiguousBytes { try w.write($0) }
                }
            }
        }
        try AtomicFileWriter.write(to: path) { w in try message.write(to: w) }
    }

    static func encode(_ model: ONNXModel, external: [String: (offset: Int, length: Int)], location: String?) throws -> ProtoMessage {
        var m = ProtoMessage()
        m.int(1, model.irVersion)
        m.stringIfSet(2, model.producerName)
        m.stringIfSet(3, model.producerVersion)
        m.stringIfSet(4, model.domain)
        if model.modelVersion != 0 { m.int(5, model.modelVersion) }
        m.stringIfSet(6, model.docString)
        m.message(7, try graph(model.graph, external: external, location: location))
        for o in model.opsetImports {
            var op = ProtoMessage()
            op.string(1, o.domain)
            op.int(2, o.version)
            m.message(8, op)
        }
        for (k, v) in model.metadataProps {
            var e = ProtoMessage()
            e.string(1, k)
            e.string(2, v)
            m.message(14, e)
        }
        return m
    }

    static func graph(_ g: ONNXGraph, external: [String: (offset: Int, length: Int)] = [:], location: String? = nil) throws -> ProtoMessage {
        var m = ProtoMessage()
        for n in try topologicallySorted(g) { m.message(1, try node(n)) }
        m.string(2, g.name.isEmpty ? "graph" : g.name)
        for (name, t) in g.initializers {
            if let e = external[name], let location {
                m.message(5, externalTensor(t, name: name, location: location, offset: e.offset, length: e.length))
            } else {
                m.message(5, tensor(t, name: name))
            }
        }
        m.stringIfSet(10, g.docString)
        for v in g.inputs { m.message(11, valueInfo(v)) }
        for v in g.outputs { m.message(12, valueInfo(v)) }
        for v in g.valueInfo { m.message(13, valueInfo(v)) }
        return m
    }

    /// Nodes in an order where every value is produced before it is read (Kahn, stable).
    static func topologicallySorted(_ g: ONNXGraph) throws -> [ONNXNode] {
        var producer: [String: Int] = [:]
        for (i, n) in g.nodes.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        var indegree = [Int](repeating: 0, count: g.nodes.count)
        var users = [[Int]](repeating: [], count: g.nodes.count)
        for (i, n) in g.nodes.enumerated() {
            for inp in Set(n.inputs) where !inp.isEmpty {
                if let p = producer[inp], p != i { indegree[i] += 1; users[p].append(i) }
            }
        }
        // Already sorted (the usual case): keep the order as given.
        if (0..<g.nodes.count).allSatisfy({ i in g.nodes[i].inputs.allSatisfy { $0.isEmpty || (producer[$0].map { $0 <= i } ?? true) } }) {
            return g.nodes
        }
        var ready = (0..<g.nodes.count).filter { indegree[$0] == 0 }
        var out: [ONNXNode] = []
        var head = 0
        while head < ready.count {
            let i = ready[head]
            head += 1
            out.append(g.nodes[i])
            for u in users[i] {
                indegree[u] -= 1
                if indegree[u] == 0 { ready.append(u) }
            }
        }
        guard out.count == g.nodes.count else {
            throw WconvError(.runtime, "cannot write ONNX: the graph has a cycle (\(g.nodes.count - out.count) nodes)")
        }
        return out
    }

    static func node(_ n: ONNXNode) throws -> ProtoMessage {
        var m = ProtoMessage()
        for i in n.inputs { m.string(1, i) }
        for o in n.outputs { m.string(2, o) }
        m.stringIfSet(3, n.name)
        m.string(4, n.opType)
        for (name, a) in n.attributes { m.message(5, try attribute(name, a)) }
        m.stringIfSet(7, n.domain)
        return m
    }

    static func attribute(_ name: String, _ a: ONNXAttribute) throws -> ProtoMessage {
        var m = ProtoMessage()
        m.string(1, name)
        switch a {
        case .float(let v): m.float(2, v); m.int(20, 1)
        case .int(let v): m.int(3, v); m.int(20, 2)
        case .string(let v): m.string(4, v); m.int(20, 3)
        case .tensor(let t): m.message(5, tensor(t, name: "")); m.int(20, 4)
        case .graph(let g): m.message(6, try graph(g)); m.int(20, 5)
        case .floats(let v): m.packedFloats(7, v); m.int(20, 6)
        case .ints(let v): m.packedInts(8, v); m.int(20, 7)
        case .strings(let v): for s in v { m.string(9, s) }; m.int(20, 8)
        case .tensors(let ts): for t in ts { m.message(10, tensor(t, name: "")) }; m.int(20, 9)
        case .graphs(let gs): for g in gs { m.message(11, try graph(g)) }; m.int(20, 10)
        case .unsupported(let type):
            throw WconvError(.runtime, "attribute '\(name)' of type \(type) (sparse tensor or type proto) cannot be written")
        }
        return m
    }

    static func tensor(_ t: Tensor, name: String) -> ProtoMessage {
        var m = ProtoMessage()
        if !t.shape.isEmpty { m.packedInts(1, t.shape) }
        m.int(2, ONNXDataType.code(t.dtype))
        m.stringIfSet(8, name)
        m.tensorBytes(9, t)
        return m
    }

    static func externalTensor(_ t: Tensor, name: String, location: String, offset: Int, length: Int) -> ProtoMessage {
        var m = ProtoMessage()
        if !t.shape.isEmpty { m.packedInts(1, t.shape) }
        m.int(2, ONNXDataType.code(t.dtype))
        m.string(8, name)
        for (k, v) in [("location", location), ("offset", String(offset)), ("length", String(length))] {
            var e = ProtoMessage()
            e.string(1, k)
            e.string(2, v)
            m.message(13, e)
        }
        m.int(14, 1)
        return m
    }

    static func valueInfo(_ v: ONNXValueInfo) -> ProtoMessage {
        var m = ProtoMessage()
        m.string(1, v.name)
        guard v.elemType != 0 else { return m }
        var tensorType = ProtoMessage()
        tensorType.int(1, v.elemType)
        if let shape = v.shape {
            var s = ProtoMessage()
            for d in shape {
                var dim = ProtoMessage()
                switch d {
                case .value(let x): dim.int(1, x)
                case .param(let p): dim.string(2, p)
                case .unknown: break
                }
                s.message(1, dim)
            }
            tensorType.message(2, s)
        }
        var type = ProtoMessage()
        type.message(1, tensorType)
        m.message(2, type)
        return m
    }
}
