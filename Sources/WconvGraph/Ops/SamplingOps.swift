import WconvFormats
import WconvTensor

extension Op {
    /// ONNX Resize (and Upsample) on any rank. inputs [x] once the sizes are known (until then
    /// [x, roi?, scales?, sizes?]). attrs:
    /// - `mode`: "nearest" | "linear" | "cubic" (n-linear / n-cubic over every resized axis);
    /// - `coordinateMode`: "half_pixel" (default), "pytorch_half_pixel", "align_corners",
    ///   "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", "half_pixel_symmetric";
    /// - `nearestMode`: "round_prefer_floor" (default), "round_prefer_ceil", "floor", "ceil", or
    ///   "simple" (opset ≤ 10: floor when upsampling, ceil when downsampling);
    /// - `cubicA` (-0.75), `excludeOutside` (0), `extrapolation` (0, tf_crop_and_resize);
    /// - `scales` (floats) or `sizes` (ints), one per axis of `axes` (default: every dim);
    ///   `keepAspectRatio`: "stretch" (default), "not_larger", "not_smaller" (with sizes);
    /// - `roi` (floats: starts then ends over `axes`, tf_crop_and_resize only).
    /// Output dims: sizes, or floor(dim · scale). Semantics and float32 coordinate arithmetic follow
    /// onnxruntime.
    public static let resize: Op = "resize"
}

/// The geometry of one resize: output shape, per-dim scale (given, or out/in with sizes) and the
/// region of interest (full rank: starts then ends, in normalised coordinates).
public struct ResizeGeometry: Equatable {
    public var outShape: [Int]
    public var scales: [Float]
    public var roi: [Float]
}

/// Resampling ops (docs/adding-an-op.md).
public enum SamplingOps {
    static let schemas: [OpSchema] = [resize]

    static let modes: Set<String> = ["nearest", "linear", "cubic"]
    static let coordinateModes: Set<String> = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                                               "tf_crop_and_resize", "half_pixel_symmetric"]
    static let nearestModes: Set<String> = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple"]

    /// The one reading of a resize's attributes, shared by the shape rule and the runtime's kernel selection.
    public static func resizeGeometry(_ node: GraphNode, _ x: [Int], fail: (String) -> Error) throws -> ResizeGeometry {
        let r = x.count
        for (i, name) in node.inputs.enumerated() where i > 0 && !name.isEmpty {
            throw fail("the \(["roi", "scales", "sizes"][min(i - 1, 2)]) (input \(i)) is computed from input data at run time; wconv needs it known once the input shapes are known")
        }
        guard modes.contains(node.string("mode") ?? "nearest") else { throw fail("mode '\(node.string("mode") ?? "")' is not nearest, linear or cubic") }
        guard coordinateModes.contains(node.string("coordinateMode") ?? "half_pixel") else {
            throw fail("coordinate transformation mode '\(node.string("coordinateMode") ?? "")' is not supported")
        }
        guard nearestModes.contains(node.string("nearestMode") ?? "round_prefer_floor") else {
            throw fail("nearest mode '\(node.string("nearestMode") ?? "")' is not supported")
        }
        var axes: [Int] = []
        for a in node.ints("axes") ?? Array(0..<r) {
            let n = a < 0 ? a + r : a
            guard n >= 0 && n < r, !axes.contains(n) else { throw fail("axes \(node.ints("axes") ?? []) do not name distinct dims of a rank-\(r) input") }
            axes.append(n)
        }
        var out = x, scales = [Float](repeating: 1, count: r)
        if let sizes = node.ints("sizes"), !sizes.isEmpty {
            guard sizes.count == axes.count, sizes.allSatisfy({ $0 >= 0 && $0 < 1 << 32 }) else {
                throw fail("sizes \(sizes) must give one non-negative size per resized axis (\(axes.count))")
            }
            let policy = node.string("keepAspectRatio") ?? "stretch"
            if policy == "stretch" {
                for (i, a) in axes.enumerated() {
                    out[a] = sizes[i]
                    scales[a] = x[a] == 0 ? 1 : Float(sizes[i]) / Float(x[a])
                }
            } else {
                guard policy == "not_larger" || policy == "not_smaller" else { throw fail("keep_aspect_ratio_policy '\(policy)' is not supported") }
                let ratios = axes.enumerated().map { i, a in x[a] == 0 ? 1 : Float(sizes[i]) / Float(x[a]) }
                let s = policy == "not_larger" ? ratios.min() ?? 1 : ratios.max() ?? 1
                for a in axes {
                    scales[a] = s
                    out[a] = Int((s * Float(x[a])).rounded(.toNearestOrAwayFromZero))
                }
            }
        } else if case .floats(let given)? = node.attributes["scales"], !given.isEmpty {
            guard given.count == axes.count, given.allSatisfy({ $0.isFinite && $0 > 0 && $0 < 1e6 }) else {
                throw fail("scales \(given) must give one positive scale per resized axis (\(axes.count))")
            }
            for (i, a) in axes.enumerated() {
                scales[a] = Float(given[i])
                // onnxruntime: floor(dim · scale) in float32.
                out[a] = Int((Float(x[a]) * scales[a]).rounded(.down))
            }
        } else {
            throw fail("needs scales or sizes")
        }
        // The kernel keeps a few (index, weight) taps per output index of each axis.
        for a in axes where out[a] > 1 << 24 { throw fail("output size \(out[a]) along axis \(a) is larger than wconv resizes to (2^24)") }
        var roi = [Float](repeating: 0, count: r) + [Float](repeating: 1, count: r)
        if case .floats(let given)? = node.attributes["roi"], !given.isEmpty {
            guard given.count == 2 * axes.count else { throw fail("roi \(given) must list a start and an end per resized axis") }
            for (i, a) in axes.enumerated() { roi[a] = Float(given[i]); roi[r + a] = Float(given[axes.count + i]) }
        }
        return ResizeGeometry(outShape: out, scales: scales, roi: roi)
    }

    static let resize = OpSchema(.resize, valueInputs: [ValueInput(1, "roi", .floats), ValueInput(2, "scales", .floats), ValueInput(3, "sizes")],
                                 onnx: ["Resize": importResize, "Upsample": importResize], onnxExport: exportResize) { a in
        let x = try a.need(0)
        return [try a.bounded(try resizeGeometry(a.node, x, fail: a.fail).outShape)]
    }

    /// Resize (opsets 10–19) and Upsample (7–9).
    static func importResize(_ ctx: inout ONNXBuildContext, _ n: ONNXNode) throws {
        // An empty constant stands for an omitted input (opset 11 requires scales even with sizes).
        func input(_ i: Int) -> String {
            guard let name = n.input(i) else { return "" }
            if let t = ctx.constants[name], t.numel == 0 { return "" }
            return name
        }
        var attrs: [String: AttributeValue] = [:]
        var mode = n.string("mode") ?? "nearest"
        if mode == "bilinear" || mode == "trilinear" { mode = "linear" }
        attrs["mode"] = .string(mode)
        let inputs: [String]
        if n.opType == "Upsample" || ctx.opset < 11 {
            // Opset ≤ 10: asymmetric coordinates, nearest floors when upsampling and ceils when downsampling.
            attrs["coordinateMode"] = .string("asymmetric")
            attrs["nearestMode"] = .string("simple")
            if let s = n.floats("scales") {
                attrs["scales"] = .floats(s.map(Double.init))
                inputs = [n.inputs[0]]
            } else {
                inputs = [n.inputs[0], "", input(1)]
            }
        } else {
            attrs["coordinateMode"] = .string(n.string("coordinate_transformation_mode") ?? "half_pixel")
            attrs["nearestMode"] = .string(n.string("nearest_mode") ?? "round_prefer_floor")
            attrs["cubicA"] = .float(Double(n.float("cubic_coeff_a") ?? -0.75))
            attrs["excludeOutside"] = .int(n.int("exclude_outside") ?? 0)
            attrs["extrapolation"] = .float(Double(n.float("extrapolation_value") ?? 0))
            if let axes = n.ints("axes") { attrs["axes"] = .ints(axes) }
            if let p = n.string("keep_aspect_ratio_policy") { attrs["keepAspectRatio"] = .string(p) }
            if (n.int("antialias") ?? 0) != 0 && mode != "nearest" {
                ctx.unsupported.append(ctx.unsupportedNode(n, "antialias=1 (an antialiasing filter when downsampling) is not supported"))
                return
            }
            let roi = (attrs["coordinateMode"]?.stringValue == "tf_crop_and_resize") ? input(1) : ""
            var ins = [n.inputs[0], roi, input(2), input(3)]
            while ins.count > 1, ins.last == "" { ins.removeLast() }
            inputs = ins
        }
        ctx.emit(n, .resize, inputs: inputs, outputs: [n.outputs[0]], attrs)
    }

    /// Resize at the exporter's opset 17: attributes of opsets 18–19 are written only when they
    /// can be expressed there.
    static func exportResize(_ e: inout ONNXExportContext, _ n: GraphNode) {
        let x = n.inputs[0], y = n.outputs[0], rank = e.rank(x)
        func problem(_ why: String) { e.problems.append("\(n.name) (resize): \(why)") }
        guard (n.string("keepAspectRatio") ?? "stretch") == "stretch" else { return problem("keep_aspect_ratio_policy needs opset 18") }
        var coordinate = n.string("coordinateMode") ?? "half_pixel"
        var nearest = n.string("nearestMode") ?? "round_prefer_floor"
        guard coordinate != "half_pixel_symmetric" else { return problem("half_pixel_symmetric needs opset 19") }
        var scales: [Double]? = nil, sizes: [Int]? = nil, roi: [Double]? = nil
        if case .floats(let s)? = n.attributes["scales"], !s.isEmpty { scales = s }
        if let s = n.ints("sizes"), !s.isEmpty { sizes = s }
        if case .floats(let v)? = n.attributes["roi"], !v.isEmpty { roi = v }
        // Opset 17 has no axes: spread the per-axis values over every dim.
        if let axes = n.ints("axes") {
            guard let r = rank, axes.allSatisfy({ ($0 < 0 ? $0 + r : $0) < r }) else { return problem("axes need the input's rank") }
            let norm = axes.map { $0 < 0 ? $0 + r : $0 }
            if let s = scales { var full = [Double](repeating: 1, count: r); for (i, a) in norm.enumerated() { full[a] = s[i] }; scales = full }
            if sizes != nil { return problem("sizes over some axes need opset 18 (the other dims are unknown here)") }
            if let v = roi {
                var full = [Double](repeating: 0, count: r) + [Double](repeating: 1, count: r)
                for (i, a) in norm.enumerated() { full[a] = v[i]; full[r + a] = v[norm.count + i] }
                roi = full
            }
        }
        if nearest == "simple" {
            // Opset 10's rule: floor when upsampling, ceil when downsampling — one of them for every axis.
            guard let s = scales else { return problem("opset-10 nearest rounding with sizes has no opset-17 form") }
            if s.allSatisfy({ $0 >= 1 }) { nearest = "floor" } else if s.allSatisfy({ $0 < 1 || $0 == 1 }) { nearest = "ceil" } else {
                return problem("opset-10 nearest rounding mixing up- and downsampling has no opset-17 form")
            }
            coordinate = "asymmetric"
        }
        var inputs = [x, roi.map { e.constant(n.name + ".roi", Tensor(shape: [$0.count], floats: $0.map { Float($0) })) } ?? ""]
        if let s = scales { inputs.append(e.constant(n.name + ".scales", Tensor(shape: [s.count], floats: s.map { Float($0) }))) }
        else if let s = sizes { inputs += ["", e.ints(n.name + ".sizes", s)] }
        else if n.inputs.count > 1 { inputs = n.inputs } else { return problem("no scales or sizes") }
        e.add("Resize", n.name, inputs, [y], [
            "mode": .string(n.string("mode") ?? "nearest"), "coordinate_transformation_mode": .string(coordinate),
            "nearest_mode": .string(nearest), "cubic_coeff_a": .float(Float(n.float("cubicA") ?? -0.75)),
            "exclude_outside": .int(n.int("excludeOutside") ?? 0), "extrapolation_value": .float(Float(n.float("extrapolation") ?? 0)),
        ], rank: rank)
    }
}
