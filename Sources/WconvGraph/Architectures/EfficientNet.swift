import WconvFormats
import WconvTensor

/// torchvision EfficientNet B0–B7 and V2 (S/M/L: FusedMBConv stages first, then MBConv): `features.0` stem (3×3 s2, SiLU), stages `features.1..7` of
/// MBConv blocks `features.S.M.block.K` (expand, depthwise, squeeze-excitation with SiLU/sigmoid,
/// projection), `features.8` 1×1 head conv, `classifier.1` Linear. Width and depth come from the
/// shapes and the block keys. Stage strides are the paper's per-stage table [1,2,2,2,1,2,1]
/// (the same for every B-variant; only widths and depths scale). Stochastic depth is identity in eval.
/// B5–B7 use BatchNorm eps 1e-3 in torchvision (B0–B4: 1e-5); the variant is read from the stem
/// width and block count, which is how the two are told apart. V2: a block whose first conv is a
/// full k×k conv (not 1×1 expand, not depthwise) is a FusedMBConv; six stages use V2-S's strides
/// [1,2,2,2,1,2], seven the table above; torchvision builds every V2 with BatchNorm eps 1e-3.
enum EfficientNetFamily: ArchitectureFamily {
    static let name = "efficientnet"
    static let stageStrides = [1, 2, 2, 2, 1, 2, 1]
    static let stageStridesV2S = [1, 2, 2, 2, 1, 2]
    /// V2 presets: (name, stem width, blocks, dropout, crop/resize, interpolation, mean/std 0.5?).
    static let variantsV2: [(String, Int, Int, Double, Int, String, Bool)] = [
        ("v2_s", 24, 40, 0.2, 384, "bilinear", false), ("v2_m", 24, 57, 0.3, 480, "bilinear", false),
        ("v2_l", 32, 79, 0.4, 480, "bicubic", true),
    ]
    /// (stem width, total MBConv blocks) of torchvision's B0…B7, and their classifier dropout.
    /// B1 and B2 share both; the head width (1280 vs 1408) tells them apart.
    static let variants: [(String, Int, Int, Double)] = [
        ("b0", 32, 16, 0.2), ("b1", 32, 23, 0.2), ("b2", 32, 23, 0.3), ("b3", 40, 26, 0.3),
        ("b4", 48, 32, 0.4), ("b5", 48, 39, 0.4), ("b6", 56, 45, 0.5), ("b7", 64, 55, 0.5),
    ]
    /// torchvision's IMAGENET1K_V1 transforms per variant: (crop, resize), bicubic.
    static let presets: [String: (Int, Int)] = [
        "b0": (224, 256), "b1": (240, 256), "b2": (288, 288), "b3": (300, 320),
        "b4": (380, 384), "b5": (456, 456), "b6": (528, 528), "b7": (600, 600),
    ]

    /// The variant's torchvision preset, or ImageNet defaults for custom widths.
    static func preprocessing(_ variant: String?) -> Preprocessing {
        guard let v = variant, let (crop, resize) = presets[v] else { return .imagenet }
        return Preprocessing(inputSize: [crop, crop], resizeShorter: resize, interpolation: "bicubic")
    }

    static func preprocessingV2(_ v: (String, Int, Int, Double, Int, String, Bool)?) -> Preprocessing {
        guard let v else { return .imagenet }
        return Preprocessing(inputSize: [v.4, v.4], resizeShorter: v.4,
                             mean: v.6 ? [0.5, 0.5, 0.5] : Preprocessing.imagenet.mean,
                             std: v.6 ? [0.5, 0.5, 0.5] : Preprocessing.imagenet.std, interpolation: v.5)
    }

    /// torchvision FusedMBConv: a k×k conv (stride here) + BN + SiLU, then a 1×1 projection + BN when
    /// the block expands; a single k×k conv + BN + SiLU when it does not.
    static func fusedBody(_ prefix: String, _ x: String, _ b: GraphBuilder, inChannels: Int, stride: Int,
                          eps: Double, momentum: Double) throws -> (String, Int, String) {
        let kids = b.children(prefix)
        guard kids.count == 1 || kids.count == 2, kids.allSatisfy({ b.isConvNormAct("\(prefix).\($0)") }) else {
            throw RecognitionFailure("'\(prefix)' is not a FusedMBConv (one or two conv-norm-activation children)")
        }
        var (y, c) = try b.convNormAct("\(prefix).\(kids[0])", x, inChannels: inChannels, stride: stride, act: .silu, eps: eps, momentum: momentum)
        let k = try b.require("\(prefix).\(kids[0]).0.weight")[2]
        if kids.count == 2 {
            (y, c) = try b.convNormAct("\(prefix).\(kids[1])", y, inChannels: c, act: nil, eps: eps, momentum: momentum)
            return (y, c, "fused\(k)x\(k)-project")
        }
        return (y, c, "fused\(k)x\(k)")
    }

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        if b.has("_conv_stem.weight") { return try EfficientNetZoo.buildPyTorch(b) }
        if b.has("conv_stem.weight"), b.hasModule("blocks") { return try EfficientNetZoo.buildTimm(b, config: config) }
        guard b.isConvNormAct("features.0") else { throw RecognitionFailure("no 'features.0.0.weight' + 'features.0.1' stem (torchvision Conv2dNormActivation), '_conv_stem' (efficientnet_pytorch) nor 'conv_stem' + 'blocks' (timm)") }
        guard b.has("features.1.0.block.0.0.weight") else {
            throw RecognitionFailure("no 'features.1.0.block.0.0.weight' (EfficientNet stages hold MBConv blocks at features.S.M.block)")
        }
        let top = b.children("features")
        guard let head = top.last, top.first == 0, top.count == head + 1 else { throw RecognitionFailure("features indices are not contiguous: \(top)") }
        let stages = Array(top.dropFirst().dropLast())
        guard b.isConvNormAct("features.\(head)") else { throw RecognitionFailure("features.\(head) is not the 1×1 head conv") }
        let stem = try b.require("features.0.0.weight", rank: 4)
        let blockCount = stages.reduce(0) { $0 + b.children("features.\($1)").count }
        let headWidth = b.shape("features.\(head).0.weight")?.first ?? 0
        let isFused: (String) -> Bool = { p in
            guard let w = b.shape(p + ".block.0.0.weight"), w.count == 4 else { return false }
            return w[1] != 1 && w[2] > 1
        }
        let v2 = stages.contains { isFused("features.\($0).0") }
        let knownV2 = v2 ? variantsV2.first { $0.1 == stem[0] && $0.2 == blockCount && headWidth == 1280 } : nil
        let known = v2 ? knownV2.map { ($0.0, $0.1, $0.2, $0.3) }
            : variants.first { $0.1 == stem[0] && $0.2 == blockCount && ($0.0 != "b1" || headWidth == 1280) && ($0.0 != "b2" || headWidth == 1408) }
        let bnEps = v2 || ["b5", "b6", "b7"].contains(known?.0 ?? "") ? 1e-3 : 1e-5
        let strideTable = stages.count == 6 && v2 ? stageStridesV2S : stageStrides
        let bnMomentum = bnEps == 1e-3 ? 0.01 : 0.1
        if stages.count != strideTable.count {
            b.evidence.append("\(stages.count) stages (B0–B7 have 7): stride 2 assumed at stages that widen, an approximation")
        }
        var (x, c) = try b.convNormAct("features.0", "input", inChannels: 3, stride: 2, act: .silu, eps: bnEps, momentum: bnMomentum)
        var shapes: [String] = []
        for (si, s) in stages.enumerated() {
            let blocks = b.children("features.\(s)")
            for m in blocks {
                let p = "features.\(s).\(m)"
                var stride = 1
                if m == blocks.first {
                    if stages.count == strideTable.count { stride = strideTable[si] } else {
                        let out = b.shape(b.children("\(p).block").last.map { "\(p).block.\($0).0.weight" } ?? "")?.first ?? c
                        stride = out > c ? 2 : 1
                    }
                }
                let (y, ch, desc) = isFused(p)
                    ? try fusedBody("\(p).block", x, b, inChannels: c, stride: stride, eps: bnEps, momentum: bnMomentum)
                    : try b.invertedResidualBody("\(p).block", x, inChannels: c, stride: stride,
                                                 act: .silu, seAct: .silu, seGate: .sigmoid, eps: bnEps, momentum: bnMomentum)
                if m == blocks.first { shapes.append("stage \(s): \(blocks.count)×[\(desc)] \(c)→\(ch) s\(stride)") }
                if stride == 1 && ch == c {
                    // stochastic_depth is identity in eval; the residual add stays.
                    x = b.add("\(p).add", .add, [y, x])
                } else { x = y }
                c = ch
            }
        }
        (x, c) = try b.convNormAct("features.\(head)", x, inChannels: c, act: .silu, eps: bnEps, momentum: bnMomentum)
        let pooled = b.poolFlatten(x)
        let (logits, _) = try b.headOrFeatures("classifier.1", pooled, inFeatures: c, dropout: known?.3 ?? 0.2, dropoutName: "classifier.0")
        b.evidence.append("stem features.0.0.weight \(stem), \(stages.count) MBConv stages (features.1..\(head - 1)), \(blockCount) blocks, head conv features.\(head) → \(c)")
        b.evidence += shapes
        b.evidence.append("SiLU activations, squeeze-excitation (fc1/fc2) with sigmoid gate")
        if v2 { b.evidence.append("FusedMBConv blocks (full k×k expand conv, no squeeze-excitation) in early stages: EfficientNetV2 layout, BatchNorm eps 1e-3") }
        b.evidence.append(known.map { "stem width \(stem[0]) and \($0.2) blocks match torchvision efficientnet_\($0.0) (BatchNorm eps \(bnEps))" }
                          ?? "widths/depths match no \(v2 ? "V2-S/M/L" : "B0–B7") preset: custom EfficientNet, BatchNorm eps \(bnEps) assumed")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: known.map { "efficientnet_\($0.0)" } ?? "efficientnet\(v2 ? "_v2" : "") (custom: stem \(stem[0]), \(blockCount) blocks)",
                            preprocessing: v2 ? preprocessingV2(knownV2) : preprocessing(known?.0))
    }
}
