import CWconvVector
import Foundation
import WconvGraph
import WconvTensor

/// LSTM and GRU (docs/adding-an-op.md): the input projection of every time step of both directions
/// is one sgemm, each step adds one sgemm of the state by R and the gate math; backward is
/// backpropagation through time over the gates the training forward saved.
enum RecurrentKernels {
    static let all: [OpKernels] = [OpKernels(.lstm, select: select), OpKernels(.gru, select: select)]

    static func select(_ r: KernelRequest) throws -> any StepKernel {
        let g = try RecurrentOps.geometry(r.node, r.inputShapes, fail: r.fail)
        guard g.seqLength >= 1, g.batch >= 1, g.inputSize >= 1 else {
            throw r.fail("sequence length \(g.seqLength), batch \(g.batch) and input size \(g.inputSize) must be at least 1")
        }
        for (k, s) in g.outputShapes.prefix(r.outputShapes.count).enumerated() { try r.agree(s, k) }
        return Recurrent(g: g, outputs: r.outputShapes.count)
    }
}

/// One LSTM or GRU node. Saved state per (direction, step, batch row), training plans only:
/// LSTM i, o, f, c̃ (4H), c_prev, h_prev, c (3H); GRU z, r, h̃ (3H), R_h·h_prev + Rb_h (H), h_prev (H).
struct Recurrent: StepKernel {
    let g: RecurrentGeometry
    let outputs: Int

    var gh: Int { g.gates * g.hidden }
    var saved: Int { (g.isLSTM ? 7 : 5) * g.hidden }
    /// Where h_prev sits in a saved row.
    var hPrevAt: Int { (g.isLSTM ? 5 : 4) * g.hidden }
    var rows: Int { g.seqLength * g.batch }

    func auxFloats(training: Bool) -> Int { training ? g.directions * rows * saved : 0 }

    func extents(inputs: [Int], outputs: [Int]) -> StepExtents {
        let d = g.directions, h = g.hidden, state = d * g.batch * h
        var e = StepExtents(inputs: inputs.count, outputs: outputs.count)
        e.read(0, rows * g.inputSize); e.read(1, d * gh * g.inputSize); e.read(2, d * gh * h)
        if g.hasBias { e.read(3, d * 2 * gh) }
        if g.hasSequenceLengths { e.read(4, g.batch) }
        if g.hasInitialH { e.read(5, state) }
        if g.hasInitialC { e.read(6, state) }
        if g.hasPeepholes { e.read(7, d * 3 * h) }
        e.write(0, rows * d * h)
        for k in 1..<max(self.outputs, 1) { e.write(k, state) }
        return e
    }

    /// Row of x (and of the input projection) holding step t of sequence b.
    func xRow(_ t: Int, _ b: Int) -> Int { g.layout == 0 ? t * g.batch + b : b * g.seqLength + t }
    func yOffset(_ t: Int, _ d: Int, _ b: Int) -> Int {
        (g.layout == 0 ? (t * g.directions + d) * g.batch + b : (b * g.seqLength + t) * g.directions + d) * g.hidden
    }
    func stateOffset(_ d: Int, _ b: Int) -> Int { (g.layout == 0 ? d * g.batch + b : b * g.directions + d) * g.hidden }
    /// Time index of the s-th step direction d processes.
    func time(_ d: Int, _ s: Int) -> Int { (d == 1 || g.reverse) ? g.seqLength - 1 - s : s }
    /// True when R's bias of gate column k is added with the input projection (not inside the
    /// reset gate's product, as GRU's linear_before_reset has it for h).
    func biasInProjection(_ k: Int) -> Bool { g.isLSTM || k < 2 * g.hidden || !g.linearBeforeReset }

    /// Steps of each sequence: sequence_lens, checked, or the full length. An empty sequence has
    /// zero final states (onnxruntime's reading), not its initial ones.
    func lengths(_ p: UnsafeMutablePointer<Float>?, fail: (String) -> Error) throws -> [Int] {
        guard let p else { return [Int](repeating: g.seqLength, count: g.batch) }
        return try (0..<g.batch).map { b in
            let v = p[b]
            guard v == v.rounded(), v >= 0, v <= Float(g.seqLength) else {
                throw fail("sequence_lens[\(b)] = \(v) is not a length between 0 and the sequence length \(g.seqLength)")
            }
            return Int(v)
        }
    }

    func forward(_ c: StepContext) throws {
        let e = c.executor
        let lens = try lengths(c.input(4), fail: c.fail)
        let h = g.hidden, d = g.directions, gh = gh, cols = d * gh, batch = g.batch
        let x = c.input(0)!, w = c.input(1)!, rw = c.input(2)!
        // Input projection of every step and direction at once, with the biases that add there.
        let proj = e.workspace.get(rows * cols)
        sgemm(transA: false, transB: true, m: rows, n: cols, k: g.inputSize, a: x, lda: g.inputSize, b: w, ldb: g.inputSize,
              beta: 0, c: proj, ldc: cols)
        if let bias = c.input(3) {
            var add = [Float](repeating: 0, count: cols)
            for dir in 0..<d {
                for k in 0..<gh { add[dir * gh + k] = bias[dir * 2 * gh + k] + (biasInProjection(k) ? bias[dir * 2 * gh + gh + k] : 0) }
            }
            for row in 0..<rows { for k in 0..<cols { proj[row * cols + k] += add[k] } }
        }
        let scratch = e.staging.get(batch * (gh + 3 * h + saved) + 5 * h)
        let rec = scratch, state = scratch + batch * gh, cell = state + batch * h, rh = cell + batch * h
        let stepSave = rh + batch * h, cellScratch = stepSave + batch * saved
        let y = c.output(0)
        for dir in 0..<d {
            let r = UnsafePointer(rw + dir * gh * h), peep = c.input(7).map { UnsafePointer($0 + dir * 3 * h) }
            let gates = CellActivations(g.activations[dir], clip: g.clip)
            let rbh = c.input(3).map { UnsafePointer($0 + dir * 2 * gh + gh + 2 * h) }
            for b in 0..<batch {
                let at = stateOffset(dir, b)
                for j in 0..<h {
                    state[b * h + j] = c.input(5).map { $0[at + j] } ?? 0
                    cell[b * h + j] = c.input(6).map { $0[at + j] } ?? 0
                }
            }
            for s in 0..<g.seqLength {
                let t = time(dir, s)
                let save = c.aux.map { $0 + (dir * g.seqLength + s) * batch * saved } ?? stepSave
                let recCols = g.isLSTM || g.linearBeforeReset ? gh : 2 * h
                sgemm(transA: false, transB: true, m: batch, n: recCols, k: h, a: state, lda: h, b: r, ldb: h, beta: 0, c: rec, ldc: gh)
                for b in 0..<batch {
                    let sv = save + b * saved
                    guard t < lens[b] else {
                        // Past this sequence's end: Y is zero, the state carries over.
                        fillFloats(y + yOffset(t, dir, b), with: 0, count: h)
                        fillFloats(sv, with: 0, count: saved)
                        if !g.isLSTM { fillFloats(rh + b * h, with: 0, count: h) }
                        continue
                    }
                    let p = UnsafePointer(proj + xRow(t, b) * cols + dir * gh), q = UnsafePointer(rec + b * gh)
                    if g.isLSTM && peep == nil && !g.inputForget && gates.isDefaultLSTM {
                        lstmCellVectorised(p, q, state: state + b * h, cell: cell + b * h, save: sv, h: h, scratch: cellScratch)
                    } else if g.isLSTM {
                        lstmCell(p, q, peep, gates, coupled: g.inputForget, state: state + b * h, cell: cell + b * h, save: sv, h: h)
                    } else {
                        gruGates(p, q, rbh, gates, linearBeforeReset: g.linearBeforeReset, state: state + b * h, rh: rh + b * h, save: sv, h: h)
                    }
                }
                if !g.isLSTM {
                    if !g.linearBeforeReset {
                        // R_h · (r ⊙ h_prev) once r is known for every row.
                        sgemm(transA: false, transB: true, m: batch, n: h, k: h, a: rh, lda: h, b: r + 2 * h * h, ldb: h,
                              beta: 0, c: rec + 2 * h, ldc: gh)
                    }
                    for b in 0..<batch where t < lens[b] {
                        gruOutput(UnsafePointer(proj + xRow(t, b) * cols + dir * gh), UnsafePointer(rec + b * gh), gates,
                                  linearBeforeReset: g.linearBeforeReset, state: state + b * h, save: save + b * saved, h: h)
                    }
                }
                for b in 0..<batch where t < lens[b] { copyFloats(y + yOffset(t, dir, b), from: state + b * h, count: h) }
            }
            for b in 0..<batch {
                if lens[b] == 0 { fillFloats(state + b * h, with: 0, count: h); fillFloats(cell + b * h, with: 0, count: h) }
                if outputs > 1 { copyFloats(c.output(1) + stateOffset(dir, b), from: state + b * h, count: h) }
                if outputs > 2 { copyFloats(c.output(2) + stateOffset(dir, b), from: cell + b * h, count: h) }
            }
        }
    }

    func backward(_ c: BackwardContext) throws {
        let dy = c.outputGradient(0), dyH = outputs > 1 ? c.outputGradient(1) : nil, dyC = outputs > 2 ? c.outputGradient(2) : nil
        guard dy != nil || dyH != nil || dyC != nil else { return }
        guard let aux = c.aux else { throw WconvError.invalid("internal: \(g.isLSTM ? "LSTM" : "GRU") backward without saved gates") }
        let e = c.executor
        let lens = try lengths(c.input(4), fail: { WconvError.invalid($0) })
        let h = g.hidden, d = g.directions, gh = gh, cols = d * gh, batch = g.batch, saved = saved
        let x = c.input(0)!, w = c.input(1)!, rw = c.input(2)!
        let dR = c.inputGradient(2), dP = c.inputGradient(7), dH0 = c.inputGradient(5), dC0 = c.inputGradient(6)
        // dProj: gradient of every input-projection entry (the pre-activations x·Wᵀ + biases feed).
        let dProj = e.workspace.get(rows * cols)
        fillFloats(dProj, with: 0, count: rows * cols)
        let scratch = e.staging.get(batch * (gh + 5 * h))
        let dA = scratch, dh = scratch + batch * gh, dc = dh + batch * h, next = dc + batch * h, rh = next + batch * h, drh = rh + batch * h
        var dRb = [Float](repeating: 0, count: cols)
        for dir in 0..<d {
            let r = UnsafePointer(rw + dir * gh * h), peep = c.input(7).map { UnsafePointer($0 + dir * 3 * h) }
            let gates = CellActivations(g.activations[dir], clip: g.clip)
            let dPeep = dP.map { $0 + dir * 3 * h }
            for b in 0..<batch {
                let at = stateOffset(dir, b)
                let empty = lens[b] == 0
                for j in 0..<h {
                    dh[b * h + j] = empty ? 0 : dyH.map { $0[at + j] } ?? 0
                    dc[b * h + j] = empty ? 0 : dyC.map { $0[at + j] } ?? 0
                }
            }
            var dhBuf = dh, nextBuf = next
            for s in stride(from: g.seqLength - 1, through: 0, by: -1) {
                let t = time(dir, s)
                let save = UnsafePointer(aux + (dir * g.seqLength + s) * batch * saved)
                fillFloats(dA, with: 0, count: batch * gh)
                for b in 0..<batch {
                    let dhRow = dhBuf + b * h, direct = nextBuf + b * h
                    guard t < lens[b] else {
                        copyFloats(direct, from: dhRow, count: h)
                        if !g.isLSTM { fillFloats(rh + b * h, with: 0, count: h) }
                        continue
                    }
                    if let dy { for j in 0..<h { dhRow[j] += dy[yOffset(t, dir, b) + j] } }
                    let sv = save + b * saved, da = dA + b * gh, dg = dProj + xRow(t, b) * cols + dir * gh
                    if g.isLSTM {
                        lstmCellBackward(sv, peep, dPeep, gates, coupled: g.inputForget, dh: dhRow, dc: dc + b * h, dA: da, h: h)
                        copyFloats(dg, from: da, count: gh)
                        fillFloats(direct, with: 0, count: h)
                    } else {
                        gruBackward(sv, gates, linearBeforeReset: g.linearBeforeReset, dh: dhRow, dA: da, dg: dg, direct: direct, rh: rh + b * h, h: h)
                    }
                }
                if !g.isLSTM && !g.linearBeforeReset {
                    // d(r ⊙ h_prev) = dA_h · R_h, then the reset gate's share.
                    sgemm(transA: false, transB: false, m: batch, n: h, k: h, a: dA + 2 * h, lda: gh, b: r + 2 * h * h, ldb: h,
                          beta: 0, c: drh, ldc: h)
                    for b in 0..<batch where t < lens[b] {
                        gruResetBackward(save + b * saved, gates, drh: drh + b * h, dA: dA + b * gh, dg: dProj + xRow(t, b) * cols + dir * gh,
                                         direct: nextBuf + b * h, h: h)
                    }
                    if let dR {
                        sgemm(transA: true, transB: false, m: h, n: h, k: batch, a: dA + 2 * h, lda: gh, b: rh, ldb: h,
                              beta: 1, c: dR + dir * gh * h + 2 * h * h, ldc: h)
                    }
                }
                // The state's gradient through R, and R's gradient from the saved h_prev rows.
                let recCols = g.isLSTM || g.linearBeforeReset ? gh : 2 * h
                sgemm(transA: false, transB: false, m: batch, n: h, k: recCols, a: dA, lda: gh, b: r, ldb: h, beta: 1, c: nextBuf, ldc: h)
                if let dR {
                    sgemm(transA: true, transB: false, m: recCols, n: h, k: batch, a: dA, lda: gh, b: save + hPrevAt, ldb: saved,
                          beta: 1, c: dR + dir * gh * h, ldc: h)
                }
                for b in 0..<batch { for k in 0..<gh { dRb[dir * gh + k] += dA[b * gh + k] } }
                swap(&dhBuf, &nextBuf)
            }
            for b in 0..<batch {
                let at = stateOffset(dir, b)
                if let dH0 { for j in 0..<h { dH0[at + j] += dhBuf[b * h + j] } }
                if let dC0 { for j in 0..<h { dC0[at + j] += dc[b * h + j] } }
            }
        }
        if let dx = c.inputGradient(0) {
            sgemm(transA: false, transB: false, m: rows, n: g.inputSize, k: cols, a: dProj, lda: cols, b: w, ldb: g.inputSize,
                  beta: 1, c: dx, ldc: g.inputSize)
        }
        if let dW = c.inputGradient(1) {
            sgemm(transA: true, transB: false, m: cols, n: g.inputSize, k: rows, a: dProj, lda: cols, b: x, ldb: g.inputSize,
                  beta: 1, c: dW, ldc: g.inputSize)
        }
        if let dB = c.inputGradient(3) {
            for dir in 0..<d {
                for k in 0..<gh {
                    var sum: Float = 0
                    for row in 0..<rows { sum += dProj[row * cols + dir * gh + k] }
                    dB[dir * 2 * gh + k] += sum
                    dB[dir * 2 * gh + gh + k] += dRb[dir * gh + k]
                }
            }
        }
    }
}

/// An RNN activation with ONNX's optional clip of its input. Derivatives come from the output
/// value (the training forward keeps outputs, not inputs): zero where the input was clipped, which
/// gave exactly the output at ±clip.
struct ClippedActivation {
    let a: RecurrentActivation
    let clip: Float
    /// Outputs at ±clip (max, min); ±infinity without clip.
    let hi: Float, lo: Float

    init(_ a: RecurrentActivation, clip: Float = .infinity) {
        self.a = a
        self.clip = clip
        if clip.isFinite {
            let p = Self.value(a, clip), m = Self.value(a, -clip)
            hi = max(p, m); lo = min(p, m)
        } else {
            hi = .infinity; lo = -.infinity
        }
    }

    static func value(_ a: RecurrentActivation, _ v: Float) -> Float {
        switch a.kind {
        case .sigmoid: return 1 / (1 + expf(-v))
        case .tanh: return tanhf(v)
        case .relu: return max(v, 0)
        case .affine: return a.alpha * v + a.beta
        case .leakyrelu: return v >= 0 ? v : a.alpha * v
        case .thresholdedrelu: return v > a.alpha ? v : 0
        case .scaledtanh: return a.alpha * tanhf(a.beta * v)
        case .hardsigmoid: return max(0, min(1, a.alpha * v + a.beta))
        case .elu: return v >= 0 ? v : a.alpha * (expf(v) - 1)
        case .softsign: return v / (1 + Swift.abs(v))
        case .softplus: return v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v))
        }
    }

    @inline(__always) func callAsFunction(_ v: Float) -> Float { Self.value(a, min(max(v, -clip), clip)) }

    /// d output / d input at output y.
    @inline(__always) func derivative(_ y: Float) -> Float {
        if y >= hi || y <= lo { return 0 }
        switch a.kind {
        case .sigmoid: return y * (1 - y)
        case .tanh: return 1 - y * y
        case .relu: return y > 0 ? 1 : 0
        case .affine: return a.alpha
        case .leakyrelu: return y >= 0 ? 1 : a.alpha
        case .thresholdedrelu: return y != 0 ? 1 : 0
        case .scaledtanh: return a.alpha == 0 ? 0 : a.alpha * a.beta * (1 - (y / a.alpha) * (y / a.alpha))
        case .hardsigmoid: return y > 0 && y < 1 ? a.alpha : 0
        case .elu: return y > 0 ? 1 : y + a.alpha
        case .softsign: return (1 - Swift.abs(y)) * (1 - Swift.abs(y))
        case .softplus: return -expm1f(-y)
        }
    }
}

/// One direction's activations: f (gates) and g (cell input / candidate) with the clip; LSTM's h
/// (applied to the cell state) without it, as onnxruntime.
struct CellActivations {
    let f: ClippedActivation, g: ClippedActivation, h: ClippedActivation
    init(_ acts: [RecurrentActivation], clip: Float) {
        f = ClippedActivation(acts[0], clip: clip)
        g = ClippedActivation(acts[1], clip: clip)
        h = ClippedActivation(acts.count > 2 ? acts[2] : RecurrentActivation(.tanh))
    }
}

extension CellActivations {
    /// σ for the gates, tanh for the candidate and the cell output, no clip: ONNX's default LSTM.
    var isDefaultLSTM: Bool {
        f.a.kind == .sigmoid && g.a.kind == .tanh && h.a.kind == .tanh && !f.clip.isFinite && !g.clip.isFinite && !h.clip.isFinite
    }
}

/// `lstmCell` for the default activations without peepholes or coupling, with the gates' σ and tanh
/// in wconv's vectorised C kernels over whole gate rows (libm's expf and tanhf one value at a time
/// took half of a batch-1 LSTM recogniser's step). `scratch` holds 5·h floats.
private func lstmCellVectorised(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, state: UnsafeMutablePointer<Float>,
                                cell: UnsafeMutablePointer<Float>, save sv: UnsafeMutablePointer<Float>, h: Int, scratch: UnsafeMutablePointer<Float>) {
    let gate = scratch, out = scratch + 4 * h
    for k in 0..<(4 * h) { gate[k] = p[k] + q[k] }
    wconv_sigmoid(gate, gate, 3 * h)                 // i, o, f
    wconv_tanh(gate + 3 * h, gate + 3 * h, h)        // c̃
    for j in 0..<h {
        let i = gate[j], o = gate[h + j], f = gate[2 * h + j], cc = gate[3 * h + j], cp = cell[j]
        let cn = f * cp + i * cc
        sv[j] = i; sv[h + j] = o; sv[2 * h + j] = f; sv[3 * h + j] = cc
        sv[4 * h + j] = cp; sv[5 * h + j] = state[j]; sv[6 * h + j] = cn
        cell[j] = cn
    }
    wconv_tanh(cell, out, h)
    for j in 0..<h { state[j] = gate[h + j] * out[j] }
}

/// One LSTM step of one sequence: p (x·Wᵀ + biases) and q (h_prev·Rᵀ) hold the gate
/// pre-activations in order i, o, f, c; updates the state and cell in place. `coupled`
/// (input_forget): f = 1 − i.
private func lstmCell(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ peep: UnsafePointer<Float>?, _ m: CellActivations, coupled: Bool,
                      state: UnsafeMutablePointer<Float>, cell: UnsafeMutablePointer<Float>, save sv: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let cp = cell[j]
        var gi = p[j] + q[j], go = p[h + j] + q[h + j], gf = p[2 * h + j] + q[2 * h + j]
        let gc = p[3 * h + j] + q[3 * h + j]
        if let peep { gi += peep[j] * cp; gf += peep[2 * h + j] * cp }
        let i = m.f(gi), f = coupled ? 1 - i : m.f(gf), cc = m.g(gc)
        let cn = f * cp + i * cc
        if let peep { go += peep[h + j] * cn }
        let o = m.f(go)
        sv[j] = i; sv[h + j] = o; sv[2 * h + j] = f; sv[3 * h + j] = cc
        sv[4 * h + j] = cp; sv[5 * h + j] = state[j]; sv[6 * h + j] = cn
        cell[j] = cn
        state[j] = o * m.h(cn)
    }
}

/// The LSTM step's adjoint: from dh (h's gradient, Y's included) and dc, the gate pre-activation
/// gradients into dA (i, o, f, c) and c_prev's gradient into dc.
private func lstmCellBackward(_ sv: UnsafePointer<Float>, _ peep: UnsafePointer<Float>?, _ dPeep: UnsafeMutablePointer<Float>?, _ m: CellActivations,
                              coupled: Bool, dh: UnsafeMutablePointer<Float>, dc: UnsafeMutablePointer<Float>, dA: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let i = sv[j], o = sv[h + j], f = sv[2 * h + j], cc = sv[3 * h + j], cp = sv[4 * h + j], cn = sv[6 * h + j]
        let tc = m.h(cn), dht = dh[j]
        let gO = dht * tc * m.f.derivative(o)
        var dcn = dc[j] + dht * o * m.h.derivative(tc)
        if let peep { dcn += gO * peep[h + j] }
        // Coupled gates: f = 1 − i, so f's share flows into i and the forget gate's inputs get none.
        let gI = dcn * (coupled ? cc - cp : cc) * m.f.derivative(i)
        let gF = coupled ? 0 : dcn * cp * m.f.derivative(f), gC = dcn * i * m.g.derivative(cc)
        var dcp = dcn * f
        if let peep { dcp += gI * peep[j] + gF * peep[2 * h + j] }
        if let dPeep { dPeep[j] += gI * cp; dPeep[h + j] += gO * cn; dPeep[2 * h + j] += gF * cp }
        dA[j] = gI; dA[h + j] = gO; dA[2 * h + j] = gF; dA[3 * h + j] = gC
        dc[j] = dcp
    }
}

/// GRU update and reset gates of one sequence (order z, r, h): saves z, r, h_prev and, with
/// linear_before_reset, R_h·h_prev + Rb_h (q_h is R_h·h_prev then); without, `rh` gets r ⊙ h_prev
/// for R_h's product.
private func gruGates(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ rbh: UnsafePointer<Float>?, _ m: CellActivations, linearBeforeReset lbr: Bool,
                      state: UnsafePointer<Float>, rh: UnsafeMutablePointer<Float>, save sv: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let z = m.f(p[j] + q[j]), r = m.f(p[h + j] + q[h + j])
        sv[j] = z; sv[h + j] = r; sv[4 * h + j] = state[j]
        rh[j] = r * state[j]
        sv[3 * h + j] = lbr ? q[2 * h + j] + (rbh?[j] ?? 0) : 0
    }
}

/// GRU candidate and new state: h̃ = tanh(p_h + r ⊙ (R_h·h_prev + Rb_h)) with linear_before_reset,
/// else tanh(p_h + q_h) with q_h = R_h·(r ⊙ h_prev); h = (1 − z) ⊙ h̃ + z ⊙ h_prev.
private func gruOutput(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ m: CellActivations, linearBeforeReset lbr: Bool,
                       state: UnsafeMutablePointer<Float>, save sv: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let z = sv[j], r = sv[h + j]
        let hh = m.g(p[2 * h + j] + (lbr ? r * sv[3 * h + j] : q[2 * h + j]))
        sv[2 * h + j] = hh
        state[j] = (1 - z) * hh + z * sv[4 * h + j]
    }
}

/// The GRU step's adjoint for the update gate and candidate: dA (the recurrent product's
/// pre-activation gradients) and dg (the input projection's) get z and h; with
/// linear_before_reset r as well, otherwise `gruResetBackward` adds r once d(r ⊙ h_prev) is known.
/// `direct` gets h_prev's gradient through z ⊙ h_prev; `rh` r ⊙ h_prev for R_h's gradient.
private func gruBackward(_ sv: UnsafePointer<Float>, _ m: CellActivations, linearBeforeReset lbr: Bool, dh: UnsafePointer<Float>, dA: UnsafeMutablePointer<Float>,
                         dg: UnsafeMutablePointer<Float>, direct: UnsafeMutablePointer<Float>, rh: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let z = sv[j], r = sv[h + j], hh = sv[2 * h + j], hp = sv[4 * h + j], dht = dh[j]
        direct[j] = dht * z
        let gH = dht * (1 - z) * m.g.derivative(hh), gZ = dht * (hp - hh) * m.f.derivative(z)
        dA[j] = gZ; dg[j] = gZ
        dg[2 * h + j] = gH
        rh[j] = r * hp
        if lbr {
            let gR = gH * sv[3 * h + j] * m.f.derivative(r)
            dA[h + j] = gR; dg[h + j] = gR
            dA[2 * h + j] = gH * r
        } else {
            dA[2 * h + j] = gH
        }
    }
}

/// Without linear_before_reset: the reset gate's gradient from drh = d(r ⊙ h_prev), and h_prev's share.
private func gruResetBackward(_ sv: UnsafePointer<Float>, _ m: CellActivations, drh: UnsafePointer<Float>, dA: UnsafeMutablePointer<Float>,
                              dg: UnsafeMutablePointer<Float>, direct: UnsafeMutablePointer<Float>, h: Int) {
    for j in 0..<h {
        let r = sv[h + j], hp = sv[4 * h + j]
        let gR = drh[j] * hp * m.f.derivative(r)
        dA[h + j] = gR; dg[h + j] = gR
        direct[j] += drh[j] * r
    }
}
