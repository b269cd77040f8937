import WconvGraph
import WconvTensor

/// The planner's proof that no kernel touches memory outside its buffers: from each compiled
/// kernel's own parameters (geometry, strides, broadcast plans, slice starts/steps) it computes how
/// many elements the kernel reads from every input and writes to every output, and compares that
/// with the elements the value's planned shape holds (its buffer holds at least that many). Any
/// excess is a planning bug and stops the run with an error naming the node, before anything runs.
/// Index values that live in the data are checked where they are read (Executor.indices, gatherND);
/// constant ones here, at plan time.
struct StepExtents {
    /// Elements read per input position (nil: not read through this step's pointer).
    var reads: [Int?]
    /// Elements written per output position.
    var writes: [Int]
}

/// Elements spanned by a strided walk over `dims` (0 when any dim is empty).
func stridedSpan(_ dims: [Int], _ strides: [Int]) -> Int {
    if dims.contains(0) { return 0 }
    return 1 + zip(dims, strides).reduce(0) { $0 + ($1.0 - 1) * abs($1.1) }
}

extension Kernel {
    /// What the kernel touches, given the element counts of its step's inputs and outputs (views
    /// and gathers size by their values; every other kernel by its own parameters).
    func extents(inputs inCounts: [Int], outputs outCounts: [Int]) -> StepExtents {
        let inputs = inCounts.count, outputs = outCounts.count
        var r = [Int?](repeating: nil, count: inputs)
        var w = [Int](repeating: 0, count: outputs)
        func read(_ k: Int, _ n: Int) { if k < inputs { r[k] = n } }
        switch self {
        case .conv(let g, _):
            read(0, g.n * g.c * g.h * g.w); read(1, g.o * g.cg * g.kh * g.kw); read(2, g.o)
            w[0] = g.n * g.o * g.ho * g.wo
        case .batchNorm(let n, let c, let inner, _, _, _):
            read(0, n * c * inner); for k in 1..<5 { read(k, c) }
            w[0] = n * c * inner
        case .affine(let n, let c, let inner, _):
            read(0, n * c * inner); read(1, c); read(2, c)
            w[0] = n * c * inner
        case .linear(let rows, let inF, let outF, _):
            read(0, rows * inF); read(1, outF * inF); read(2, outF)
            w[0] = rows * outF
        case .matmul(let p):
            read(0, (p.aOffsets.max() ?? 0) + p.m * p.k); read(1, (p.bOffsets.max() ?? 0) + p.k * p.n)
            w[0] = p.batch * p.m * p.n
        case .activation(_, let count), .unary(_, let count), .dropout(_, let count):
            read(0, count); w[0] = count
        case .maxPool(let g), .avgPool(let g):
            read(0, g.n * g.c * g.h * g.w); w[0] = g.n * g.c * g.ho * g.wo
        case .adaptiveAvgPool(let planes, let h, let wd, let oh, let ow):
            read(0, planes * h * wd); w[0] = planes * oh * ow
        case .binary(_, let p):
            read(0, stridedSpan(p.dims, p.sa)); read(1, stridedSpan(p.dims, p.sb)); w[0] = p.count
        case .expand(let p):
            read(0, stridedSpan(p.dims, p.sa)); w[0] = p.count
        case .concat(let lengths, let outer, let inner):
            for (k, len) in lengths.enumerated() { read(k, outer * len * inner) }
            w[0] = outer * lengths.reduce(0, +) * inner
        case .view:
            // The output is the input's buffer seen with another shape.
            if outputs > 0 { read(0, outCounts[0]) }
        case .transpose(let shape, _):
            read(0, shape.reduce(1, *)); w[0] = shape.reduce(1, *)
        case .layerNorm(let rows, let inner, _):
            read(0, rows * inner); read(1, inner); read(2, inner); w[0] = rows * inner
        case .gather(let outer, let axisLen, let inner, let di, let ii):
            read(di, outer * axisLen * inner)
            if outputs > 0 { w[0] = outer * (ii < inputs ? inCounts[ii] : 0) * inner }
        case .softmax(let outer, let axisLen, let inner):
            read(0, outer * axisLen * inner); w[0] = outer * axisLen * inner
        case .pad(let shape, let pads, _):
            read(0, shape.reduce(1, *))
            w[0] = shape.indices.reduce(1) { $0 * (shape[$1] + pads[$1] + pads[$1 + shape.count]) }
        case .attention(let g, let maskShape):
            read(0, g.b * g.tq * g.d); read(1, g.kvBatch * g.tk * g.d); read(2, g.kvBatch * g.tk * g.d)
            if let maskShape { read(3, maskShape.reduce(1, *)) }
            w[0] = g.b * g.tq * g.d
        case .slice(let p):
            // The last element read along each axis must lie inside the input.
            let inside = p.inShape.indices.allSatisfy { a in
                p.outShape[a] == 0 || (p.starts[a] >= 0 && p.starts[a] + (p.outShape[a] - 1) * p.steps[a] < p.inShape[a])
            }
            read(0, inside ? p.inShape.reduce(1, *) : Int.max); w[0] = p.outShape.reduce(1, *)
        case .arange(let count, _, _), .fill(_, let count), .range(_, _, let count):
            w[0] = count
        case .reduce(_, let p):
            read(0, p.outer * p.red * p.inner); w[0] = p.outer * p.inner
        case .whereSelect(let strides, let outShape):
            for k in 0..<3 { read(k, stridedSpan(outShape, strides[k])) }
            w[0] = outShape.reduce(1, *)
        case .split(let lengths, let outer, let inner):
            read(0, outer * lengths.reduce(0, +) * inner)
            for (k, len) in lengths.enumerated() where k < outputs { w[k] = outer * len * inner }
        case .constant(let vals):
            w[0] = vals.count
        case .onnx(let k):
            switch k {
            case .unary(_, let count): read(0, count); w[0] = count
            case .reduce(_, let m, let outCount, _):
                read(0, m.count)
                w[0] = max(outCount, stridedSpan(m.outShape, m.strides[0]))
            case .tile(let inShape, let outShape): read(0, inShape.reduce(1, *)); w[0] = outShape.reduce(1, *)
            case .constant(let values): w[0] = values.count
            case .fill(_, let count): w[0] = count
            case .gatherND(let p):
                let fits = p.dims.reduce(1, *) * p.slice <= p.batchStride
                read(0, fits ? p.batch * p.batchStride : Int.max); read(1, p.batch * p.tuples * p.k)
                w[0] = p.batch * p.tuples * p.slice
            case .argMax(let outer, let axisLen, let inner, _): read(0, outer * axisLen * inner); w[0] = outer * inner
            case .intDiv(let m):
                read(0, stridedSpan(m.outShape, m.strides[0])); read(1, stridedSpan(m.outShape, m.strides[1])); w[0] = m.count
            }
        }
        return StepExtents(reads: r, writes: w)
    }
}

extension Executor {
    /// Refuses a step whose kernel would read or write past the buffers of its values (shapes as
    /// planned in `shp`), and a gather whose constant indices fall outside the gathered axis.
    func checkAccesses(_ st: Step, shapes shp: [[Int]?], constant: (Int) -> UnsafePointer<Float>?) throws {
        let node = nodes[st.node].node
        func refuse(_ what: String) -> WconvError {
            WconvError(.runtime, "node '\(node.name)' (\(node.op)): \(what); the run is stopped before it starts (a planning bug: please report it with the model)")
        }
        func numel(_ v: Int) -> Int { shp[v].map { $0.reduce(1, *) } ?? 0 }
        let e = st.kernel.extents(inputs: st.inputs.map { $0 >= 0 ? numel($0) : 0 }, outputs: st.outputs.map(numel))
        if case .gather(_, let axisLen, _, _, let ii) = st.kernel, ii < st.inputs.count, st.inputs[ii] >= 0 {
            let iv = st.inputs[ii]
            if let p = constant(iv) {
                for i in 0..<numel(iv) {
                    let f = p[i]
                    guard f.isFinite, f == f.rounded(), f >= Float(-axisLen), f < Float(axisLen) else {
                        throw WconvError.invalid("node '\(node.name)' (\(node.op)): constant index \(f) at position \(i) is out of range for an axis of size \(axisLen)")
                    }
                }
            }
        }
        for (k, need) in e.reads.enumerated() {
            guard let need, k < st.inputs.count, st.inputs[k] >= 0 else { continue }
            let have = numel(st.inputs[k])
            if need > have {
                throw refuse("the kernel would read \(need == Int.max ? "past the end of" : "\(need) elements of") input \(k) '\(node.inputs[safe: k] ?? "?")', which holds \(have) (shape \(shp[st.inputs[k]] ?? []))")
            }
        }
        for (k, need) in e.writes.enumerated() where k < st.outputs.count {
            let have = numel(st.outputs[k])
            if need > have {
                throw refuse("the kernel would write \(need) elements to output \(k) '\(node.outputs[safe: k] ?? "?")', which holds \(have) (shape \(shp[st.outputs[k]] ?? []))")
            }
        }
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
