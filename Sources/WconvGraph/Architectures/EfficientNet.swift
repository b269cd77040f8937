import WconvTensor

/// torchvision EfficientNet B0–B7: `features.0` stem (3×3 s2, SiLU), stages `features.1..7` of
/// MBConv blocks `features.S.M.block.K` (expand, depthwise, squeeze-excitation with SiLU/sigmoid,
/// projection), `features.8` 1×1 head conv, `classifier.1` Linear. Width and depth come from the
/// shapes and the block keys. Stage strides are the paper's per-stage table [1,2,2,2,1,2,1]
/// (the same for every B-variant; only widths and depths scale). Stochastic depth is identity in eval.
/// B5–B7 use BatchNorm eps 1e-3 in torchvision (B0–B4: 1e-5); the variant is read from the stem
/// width and block count, which is how the two are told apart.
enum EfficientNetFamily: ArchitectureFamily {
    static let name = "efficientnet"
    static let stageStrides = [1, 2, 2, 2, 1, 2, 1]
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

    static func build(_ b: GraphBuilder, config: [String: Any]?) throws -> ModelGraph {
        guard b.isConvNormAct("features.0") else { throw RecognitionFailure("no 'features.0.0.weight' + 'features.0.1' stem (torchvision Conv2dNormActivation)") }
        guard b.has("features.1.0.block.0.0.weight") else {
            throw RecognitionFailure("no 'features.1.0.block.0.0.weight' (EfficientNet stages hold MBConv blocks at features.S.M.block)")
        }
        let top = b.children("features")
        guard let head = top.last, top == Array(0...head) else { throw RecognitionFailure("features indices are not contiguous: \(top)") }
        let stages = Array(top.dropFirst().dropLast())
        guard b.isConvNormAct("features.\(head)") else { throw RecognitionFailure("features.\(head) is not the 1×1 head conv") }
        let stem = try b.require("features.0.0.weight", rank: 4)
        let blockCount = stages.reduce(0) { $0 + b.children("features.\($1)").count }
        let headWidth = b.shape("features.\(head).0.weight")?.first ?? 0
        let known = variants.first { $0.1 == stem[0] && $0.2 == blockCount && ($0.0 != "b1" || headWidth == 1280) && ($0.0 != "b2" || headWidth == 1408) }
        let bnEps = ["b5", "b6", "b7"].contains(known?.0 ?? "") ? 1e-3 : 1e-5
        let bnMomentum = bnEps == 1e-3 ? 0.01 : 0.1
        if stages.count != stageStrides.count {
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
                    if stages.count == stageStrides.count { stride = stageStrides[si] } else {
                        let out = b.shape(b.children("\(p).block").last.map { "\(p).block.\($0).0.weight" } ?? "")?.first ?? c
                        stride = out > c ? 2 : 1
                    }
                }
                let (y, ch, desc) = try b.invertedResidualBody("\(p).block", x, inChannels: c, stride: stride,
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
        let dropped = b.add("classifier.0", .dropout, [pooled], ["ratio": .float(known?.3 ?? 0.2)])
        let (logits, classes) = try b.linear("classifier.1", dropped, inFeatures: c, output: "logits")
        b.evidence.append("stem features.0.0.weight \(stem), \(stages.count) MBConv stages (features.1..\(head - 1)), \(blockCount) blocks, head conv features.\(head) → \(c)")
        b.evidence += shapes
        b.evidence.append("SiLU activations, squeeze-excitation (fc1/fc2) with sigmoid gate; classifier.1.weight [\(classes), \(c)]")
        b.evidence.append(known.map { "stem width \(stem[0]) and \($0.2) blocks match torchvision efficientnet_\($0.0) (BatchNorm eps \(bnEps))" }
                          ?? "widths/depths match no B0–B7 preset: custom EfficientNet, BatchNorm eps 1e-5 assumed")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: known.map { "efficientnet_\($0.0)" } ?? "efficientnet (custom: stem \(stem[0]), \(blockCount) blocks)",
                            preprocessing: preprocessing(known?.0))
    }
}
