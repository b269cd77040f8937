import OrderedCollections
import WconvFormats
import WconvTensor

extension Op {
    /// ONNX LSTM; activations f, g, h default to σ (gates), tanh (cell input), tanh (output).
    /// inputs [x, W (D, 4H, I), R (D, 4H, H), B? (D, 8H), sequence_lens? (batch), initial_h?,
    /// initial_c? (D, batch, H; layout 1: batch, D, H), P? (D, 3H)], gates in ONNX order i, o, f, c
    /// (W's and R's biases in B), peepholes P in order i, o, f. attrs direction ("forward" |
    /// "reverse" | "bidirectional", D = 1 or 2), hiddenSize H, layout (0: x [T, batch, I], 1: x
    /// [batch, T, I]), activations (per direction f, g, h: any of ONNX's list; activationAlpha and
    /// activationBeta as ONNX), clip (bound on every gate activation's input, not on h(c),
    /// as onnxruntime), inputForget (1: f = 1 − i). outputs [Y (T, D, batch, H; layout 1: batch, T,
    /// D, H), Y_h, Y_c (as initial_h)]. A sequence shorter than T (sequence_lens) leaves zeros in Y
    /// after its end and its last state in Y_h and Y_c (zeros for an empty one), as onnxruntime does.
    public static let lstm: Op = "lstm"
    /// ONNX GRU; activations f, g default to σ (gates) and tanh (candidate). inputs as
    /// `lstm` without initial_c and P: W (D, 3H, I), R (D, 3H, H), B? (D, 6H), gates in ONNX order
    /// z, r, h. attrs as `lstm` (but inputForget) plus linearBeforeReset (0: the reset gate scales h before R's
    /// product; 1: after it, as PyTorch's GRU and its exports). outputs [Y, Y_h].
    public static let gru: Op = "gru"
}

/// Sizes and options of one LSTM or GRU node, read once for the shape rule and the runtime's kernel.
public struct RecurrentGeometry: Equatable, Sendable {
    /// 4 for LSTM (i, o, f, c), 3 for GRU (z, r, h).
    public var gates: Int
    public var seqLength: Int, batch: Int, inputSize: Int, hidden: Int
    /// 1 or 2 (bidirectional).
    public var directions: Int
    /// Direction 0 runs backwards in time ("reverse").
    public var reverse: Bool
    /// 1: batch-major x, Y, states.
    public var layout: Int
    public var linearBeforeReset: Bool
    /// Bound on every gate activation's input (ONNX clip); .infinity when none.
    public var clip: Float
    /// LSTM input_forget: the forget gate is 1 − the input gate.
    public var inputForget: Bool
    /// Per direction: LSTM's f (gates), g (cell input), h (output); GRU's f (gates), g (candidate).
    public var activations: [[RecurrentActivation]]
    /// Present optional inputs.
    public var hasBias: Bool, hasSequenceLengths: Bool, hasInitialH: Bool, hasInitialC: Bool, hasPeepholes: Bool

    public var isLSTM: Bool { gates == 4 }
    /// Y, then Y_h (and Y_c for LSTM).
    public var outputShapes: [[Int]] {
        let y = layout == 0 ? [seqLength, directions, batch, hidden] : [batch, seqLength, directions, hidden]
        let state = stateShape
        return isLSTM ? [y, state, state] : [y, state]
    }
    public var stateShape: [Int] { layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden] }
}

/// One of ONNX's RNN activation functions with its alpha and beta (onnxruntime's defaults when the
/// file gives none: LeakyRelu 0.01, HardSigmoid 0.2 and 0.5, Elu 1, others 0).
public struct RecurrentActivation: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case sigmoid, tanh, relu, affine, leakyrelu, thresholdedrelu, scaledtanh, hardsigmoid, elu, softsign, softplus
    }
    public var kind: Kind
    public var alpha: Float, beta: Float

    public init(_ kind: Kind, alpha: Float = 0, beta: Float = 0) {
        self.kind = kind
        self.alpha = alpha
        self.beta = beta
    }
    var usesAlpha: Bool { [.affine, .leakyrelu, .thresholdedrelu, .scaledtanh, .hardsigmoid, .elu].contains(kind) }
    var usesBeta: Bool { [.affine, .scaledtanh, .hardsigmoid].contains(kind) }
    static let defaults: [Kind: (Float, Float)] = [.leakyrelu: (0.01, 0), .hardsigmoid: (0.2, 0.5), .elu: (1, 0)]
}

/// LSTM and GRU (docs/adding-an-op.md).
public enum RecurrentOps {
    /// The activations of a node per direction (attrs activations, activationAlpha,
    /// activationBeta as ONNX has them: alphas and betas consumed in order by the functions that
    /// take them, as onnxruntime reads them); the defaults σ, tanh (, tanh) without `activations`.
    public static func activations(_ node: GraphNode, directions: Int, fail: (String) -> Error) throws -> [[RecurrentActivation]] {
        let per = node.op == .lstm ? 3 : 2
        guard case .strings(let names)? = node.attributes["activations"] else {
            let one: [RecurrentActivation] = [.init(.sigmoid), .init(.tanh), .init(.tanh)]
            return [[RecurrentActivation]](repeating: Array(one.prefix(per)), count: directions)
        }
        guard names.count == per * directions else {
            throw fail("activations \(names) should name \(per) functions per direction (\(per * directions))")
        }
        var alphas = (node.attributes["activationAlpha"]?.floatsValue ?? []).makeIterator()
        var betas = (node.attributes["activationBeta"]?.floatsValue ?? []).makeIterator()
        var all: [RecurrentActivation] = []
        for name in names {
            guard let kind = RecurrentActivation.Kind(rawValue: name.lowercased()) else {
                throw fail("activation '\(name)' is not one of ONNX's RNN activations (\(RecurrentActivation.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var a = RecurrentActivation(kind, alpha: RecurrentActivation.defaults[kind]?.0 ?? 0, beta: RecurrentActivation.defaults[kind]?.1 ?? 0)
            if a.usesAlpha, let v = alphas.next() { a.alpha = Float(v) }
            if a.usesBeta, let v = betas.next() { a.beta = Float(v) }
            all.append(a)
        }
        return (0..<directions).map { Array(all[($0 * per)..<(($0 + 1) * per)]) }
    }

    static let schemas: [OpSchema] = [lstm, gru]

    static let directionNames = ["forward", "reverse", "bidirectional"]

    /// The one reading of an LSTM/GRU node's attributes and input shapes.
    public static func geometry(_ node: GraphNode, _ inputs: [[Int]?], fail: (String) -> Error) throws -> RecurrentGeometry {
        let gates = node.op == .lstm ? 4 : 3
        func shape(_ i: Int) -> [Int]? { i < inputs.count ? inputs[i] : nil }
        guard let x = shape(0), x.count == 3 else { throw fail("x must be 3-D ([seq, batch, input] or, with layout 1, [batch, seq, input])") }
        guard let w = shape(1), let r = shape(2), w.count == 3, r.count == 3 else { throw fail("W and R must be 3-D") }
        let direction = node.string("direction") ?? "forward"
        guard directionNames.contains(direction) else { throw fail("direction '\(direction)' is not forward, reverse or bidirectional") }
        let d = direction == "bidirectional" ? 2 : 1
        let layout = node.int("layout") ?? 0
        guard layout == 0 || layout == 1 else { throw fail("layout \(layout) is not 0 or 1") }
        let hidden = node.int("hiddenSize") ?? r[2]
        let (t, b) = layout == 0 ? (x[0], x[1]) : (x[1], x[0])
        guard hidden >= 1, hidden < 1 << 20, x[2] < 1 << 24 else { throw fail("hidden size \(hidden) and input size \(x[2]) must be positive and sane") }
        if let c = node.float("clip"), !(c > 0) { throw fail("clip \(c) must be positive") }
        guard w == [d, gates * hidden, x[2]], r == [d, gates * hidden, hidden] else {
            throw fail("W \(w) and R \(r) should be [\(d), \(gates * hidden), \(x[2])] and [\(d), \(gates * hidden), \(hidden)] for \(direction) with hidden size \(hidden)")
        }
        var g = RecurrentGeometry(gates: gates, seqLength: t, batch: b, inputSize: x[2], hidden: hidden, directions: d,
                                  reverse: direction == "reverse", layout: layout, linearBeforeReset: (node.int("linearBeforeReset") ?? 0) != 0,
                                  clip: Float(node.float("clip") ?? .infinity), inputForget: gates == 4 && (node.int("inputForget") ?? 0) != 0,
                                  activations: try activations(node, directions: d, fail: fail),
                                  hasBias: false, hasSequenceLengths: false, hasInitialH: false, hasInitialC: false, hasPeepholes: false)
        if let s = shape(3) {
            guard s == [d, 2 * gates * hidden] else { throw fail("B \(s) should be [\(d), \(2 * gates * hidden)]") }
            g.hasBias = true
        }
        if let s = shape(4) {
            guard s == [b] else { throw fail("sequence_lens \(s) should be [\(b)]") }
            g.hasSequenceLengths = true
        }
        if let s = shape(5) {
            guard s == g.stateShape else { throw fail("initial_h \(s) should be \(g.stateShape)") }
            g.hasInitialH = true
        }
        if gates == 4, let s = shape(6) {
            guard s == g.stateShape else { throw fail("initial_c \(s) should be \(g.stateShape)") }
            g.hasInitialC = true
        }
        if gates == 4, let s = shape(7) {
            guard s == [d, 3 * hidden] else { throw fail("P \(s) should be [\(d), \(3 * hidden)]") }
            g.hasPeepholes = true
        }
        guard (1...(gates == 4 ? 3 : 2)).contains(node.outputs.count) else { throw fail("has \(node.outputs.count) outputs; expected Y, Y_h\(gates == 4 ? ", Y_c" : "")") }
        return g
    }

    static func rule(_ a: ShapeArgs) throws -> [[Int]] {
        Array(try geometry(a.node, a.inputs, fail: a.fail).outputShapes.prefix(a.node.outputs.count))
    }

    static let lstm = OpSchema(.lstm, dtype: .input(0), onnx: ["LSTM": importRecurrent(.lstm)], onnxExport: exportRecurrent("LSTM"), shape: rule)
    static let gru = OpSchema(.gru, dtype: .input(0), onnx: ["GRU": importRecurrent(.gru)], onnxExport: exportRecurrent("GRU"), shape: rule)

    /// LSTM and GRU at any opset (layout from 14). Unknown activations are refused naming the node;
    /// omitted outputs get names so the kernel always has its outputs.
    static func importRecurrent(_ op: Op) -> ONNXImporter {
        { ctx, n in
            let lstm = op == .lstm
            let direction = n.string("direction") ?? "forward"
            let d = direction == "bidirectional" ? 2 : 1
            var problems: [String] = []
            if !directionNames.contains(direction) { problems.append("direction '\(direction)' is not forward, reverse or bidirectional") }
            var attrs: [String: AttributeValue] = ["direction": .string(direction), "layout": .int(n.int("layout") ?? 0)]
            if case .strings(let acts)? = n.attributes["activations"] {
                attrs["activations"] = .strings(acts)
                if let v = n.floats("activation_alpha") { attrs["activationAlpha"] = .floats(v.map(Double.init)) }
                if let v = n.floats("activation_beta") { attrs["activationBeta"] = .floats(v.map(Double.init)) }
                // The kernel's reading, so an unknown function is reported with the node's other problems.
                var why: String? = nil
                _ = try? activations(GraphNode(name: n.name, op: op, inputs: [], outputs: [], attributes: attrs), directions: d,
                                     fail: { why = $0; return WconvError.invalid($0) })
                if let why { problems.append(why) }
            }
            guard problems.isEmpty else {
                ctx.unsupported.append(ctx.unsupportedNode(n, problems.joined(separator: "; ")))
                return
            }
            if let h = n.int("hidden_size") { attrs["hiddenSize"] = .int(h) }
            if !lstm { attrs["linearBeforeReset"] = .int(n.int("linear_before_reset") ?? 0) }
            if let clip = n.float("clip") { attrs["clip"] = .float(Double(clip)) }
            if lstm, let f = n.int("input_forget"), f != 0 { attrs["inputForget"] = .int(f) }
            let base = n.name.isEmpty ? (n.outputs.first { !$0.isEmpty } ?? op.rawValue) : n.name
            let names = lstm ? ["Y", "Y_h", "Y_c"] : ["Y", "Y_h"]
            let outputs = names.enumerated().map { k, s in k < n.outputs.count && !n.outputs[k].isEmpty ? n.outputs[k] : "\(base)::\(s)" }
            var inputs = Array(n.inputs.prefix(lstm ? 8 : 6))
            while inputs.last == "" { inputs.removeLast() }
            ctx.emit(n, op, inputs: inputs, outputs: outputs, attrs)
        }
    }

    /// LSTM/GRU at the exporter's opset 17 (layout exists from 14).
    static func exportRecurrent(_ opType: String) -> ONNXExporter {
        { e, n in
            var attrs: OrderedDictionary<String, ONNXAttribute> = ["direction": .string(n.string("direction") ?? "forward"),
                                                                   "layout": .int(n.int("layout") ?? 0)]
            if let h = n.int("hiddenSize") { attrs["hidden_size"] = .int(h) }
            if opType == "GRU" { attrs["linear_before_reset"] = .int(n.int("linearBeforeReset") ?? 0) }
            if let clip = n.float("clip") { attrs["clip"] = .float(Float(clip)) }
            if let f = n.int("inputForget") { attrs["input_forget"] = .int(f) }
            if case .strings(let acts)? = n.attributes["activations"] { attrs["activations"] = .strings(acts) }
            if let v = n.attributes["activationAlpha"]?.floatsValue { attrs["activation_alpha"] = .floats(v.map { Float($0) }) }
            if let v = n.attributes["activationBeta"]?.floatsValue { attrs["activation_beta"] = .floats(v.map { Float($0) }) }
            // Outputs the importer named for an omitted one go back to omitted when nothing reads them.
            let read = Set(e.graph.nodes.flatMap(\.inputs) + e.graph.outputs.map(\.name))
            let outputs = n.outputs.enumerated().map { k, o in
                o.hasSuffix("::" + ["Y", "Y_h", "Y_c"][min(k, 2)]) && !read.contains(o) ? "" : o
            }
            e.add(opType, n.name, n.inputs, outputs, attrs, rank: nil)
            for (k, o) in outputs.enumerated() where !o.isEmpty { e.ranks[o] = k == 0 ? 4 : 3 }
        }
    }
}
