import WconvFormats
import WconvTensor

extension GraphBuilder {
    /// LayerNorm over the channels of an NCHW tensor (torchvision's LayerNorm2d, timm's LayerNorm2d):
    /// to NHWC, normalise the last dim, back to NCHW.
    func channelLayerNorm(_ prefix: String, _ x: String, channels: Int, eps: Double) throws -> String {
        let nhwc = add(prefix + ".to_nhwc", .transpose, [x], ["perm": .ints([0, 2, 3, 1])])
        let y = try layerNorm(prefix, nhwc, dim: channels, eps: eps)
        return add(prefix + ".to_nchw", .transpose, [y], ["perm": .ints([0, 3, 1, 2])])
    }
}

/// ConvNeXt in torchvision's and timm's layouts. Both: a 4×4 stride-4 patchify conv + LayerNorm2d
/// stem, four stages of blocks (7×7 depthwise conv; in channels-last: LayerNorm, Linear ×4, GELU,
/// Linear; layer scale; residual), a LayerNorm2d + 2×2 stride-2 conv downsampling before stages
/// 2–4, global average pool, LayerNorm, Linear. Every LayerNorm has eps 1e-6, GELU is exact.
/// torchvision: `features.0.{0,1}` stem, stages `features.{1,3,5,7}.B` (`block.0` dw conv, `block.2`
/// norm, `block.3`/`block.5` linears, `layer_scale` [C,1,1]), downsamples `features.{2,4,6}.{0,1}`,
/// head `classifier.{0,2}`. timm: `stem.{0,1}`, `stages.S.downsample.{0,1}`, `stages.S.blocks.B.`
/// (`conv_dw`, `norm`, `mlp.fc1`/`mlp.fc2`, `gamma` [C]), head `head.norm`, `head.fc`.
/// Stochastic depth is identity in eval. ConvNeXt-V2 (GRN) and conv-MLP variants are not matched.
enum ConvNeXtFamily: ArchitectureFamily {
    static let name = "convnext"
    /// (name, stem width, blocks per stage) of the standard sizes, and torchvision's resize for each.
    static let variants: [(String, Int, [Int], Int)] = [
        ("convnext_tiny", 96, [3, 3, 9, 3], 236), ("convnext_small", 96, [3, 3, 27, 3], 230),
        ("convnext_base", 128, [3, 3, 27, 3], 232), ("convnext_large", 192, [3, 3, 27, 3], 232),
        ("convnext_xlarge", 256, [3, 3, 27, 3], 232),
    ]

    /// Module names of one layout.
    struct Names {
        var stem: (conv: String, norm: String)
        var stages: [(downsample: (norm: String, conv: String)?, blocks: [String])]
        var dwConv: String, norm: String, fc1: String, fc2: String, scale: String
        var headNorm: String, headFC: String
        var timm: Bool
    }

    static func names(_ b: GraphBuilder) throws -> Names {
        if b.has("features.0.0.weight"), b.has("features.1.0.block.0.weight") {
            let top = b.children("features")
            guard top == Array(0...7) else { throw RecognitionFailure("torchvision ConvNeXt has features.0..7, not \(top)") }
            let stages = [1, 3, 5, 7].map { s -> ((String, String)?, [String]) in
                (s == 1 ? nil : ("features.\(s - 1).0", "features.\(s - 1).1"), b.children("features.\(s)").map { "features.\(s).\($0)" })
            }
            return Names(stem: ("features.0.0", "features.0.1"), stages: stages, dwConv: "block.0", norm: "block.2",
                         fc1: "block.3", fc2: "block.5", scale: "layer_scale", headNorm: "classifier.0", headFC: "classifier.2", timm: false)
        }
        if b.has("stem.0.weight"), b.has("stages.0.blocks.0.conv_dw.weight") {
            let stages = b.children("stages").map { s -> ((String, String)?, [String]) in
                let ds = b.has("stages.\(s).downsample.1.weight") ? ("stages.\(s).downsample.0", "stages.\(s).downsample.1") : nil
                return (ds, b.children("stages.\(s).blocks").map { "stages.\(s).blocks.\($0)" })
            }
            return Names(stem: ("stem.0", "stem.1"), stages: stages, dwConv: "conv_dw", norm: "norm", fc1: "mlp.fc1",
                         fc2: "mlp.fc2", scale: "gamma", headNorm: "head.norm", headFC: "head.fc", timm: true)
        }
        throw RecognitionFailure("no 'features.1.0.block.0.weight' (torchvision ConvNeXt) nor 'stages.0.blocks.0.conv_dw.weight' (timm ConvNeXt)")
    }

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let n = try names(b)
        let eps = 1e-6
        let stem = try b.require(n.stem.conv + ".weight", rank: 4)
        guard stem[1] == 3, stem[2] == stem[3], stem[2] > 1 else { throw RecognitionFailure("'\(n.stem.conv).weight' \(stem) is not a patchify stem on 3 channels") }
        var (x, c) = try b.conv(n.stem.conv, "input", inChannels: 3, stride: stem[2], pad: 0)
        x = try b.channelLayerNorm(n.stem.norm, x, channels: c, eps: eps)
        var depths: [Int] = []
        for (si, stage) in n.stages.enumerated() {
            if let ds = stage.downsample {
                x = try b.channelLayerNorm(ds.norm, x, channels: c, eps: eps)
                let k = try b.require(ds.conv + ".weight", rank: 4)[2]
                (x, c) = try b.conv(ds.conv, x, inChannels: c, stride: k, pad: 0)
            } else if si > 0 {
                throw RecognitionFailure("stage \(si) has no downsample (LayerNorm2d + strided conv)")
            }
            guard !stage.blocks.isEmpty else { throw RecognitionFailure("stage \(si) has no blocks") }
            depths.append(stage.blocks.count)
            for p in stage.blocks {
                if b.hasModule(p + ".mlp.grn") { throw RecognitionFailure("'\(p)' has GRN (ConvNeXt-V2), which this family does not build") }
                let dw = try b.require("\(p).\(n.dwConv).weight", rank: 4)
                guard dw[1] == 1, dw[0] == c else { throw RecognitionFailure("'\(p).\(n.dwConv)' \(dw) is not a depthwise conv over \(c) channels") }
                var (y, _) = try b.conv("\(p).\(n.dwConv)", x, inChannels: c)
                y = b.add(p + ".to_nhwc", .transpose, [y], ["perm": .ints([0, 2, 3, 1])])
                y = try b.layerNorm("\(p).\(n.norm)", y, dim: c, eps: eps)
                var (h, hd) = try b.linear("\(p).\(n.fc1)", y, inFeatures: c)
                h = b.add("\(p).\(n.fc1).act", .gelu, [h], ["approximate": .string("none")])
                (h, hd) = try b.linear("\(p).\(n.fc2)", h, inFeatures: hd)
                guard hd == c else { throw RecognitionFailure("'\(p).\(n.fc2)' gives \(hd) channels, expected \(c)") }
                if let s = b.shape("\(p).\(n.scale)") {
                    // Layer scale: [C] (timm gamma) broadcasts over channels-last, [C,1,1] (torchvision) over NCHW.
                    guard s.reduce(1, *) == c else { throw RecognitionFailure("layer scale '\(p).\(n.scale)' \(s) does not have \(c) values") }
                    if n.timm { h = b.add("\(p).\(n.scale).mul", .mul, [h, "\(p).\(n.scale)"]) }
                    h = b.add(p + ".to_nchw", .transpose, [h], ["perm": .ints([0, 3, 1, 2])])
                    if !n.timm { h = b.add("\(p).\(n.scale).mul", .mul, [h, "\(p).\(n.scale)"]) }
                } else {
                    h = b.add(p + ".to_nchw", .transpose, [h], ["perm": .ints([0, 3, 1, 2])])
                }
                x = b.add(p + ".add", .add, [h, x])
            }
        }
        x = b.add("avgpool", .globalAvgPool, [x], ["keepdims": .int(1)])
        x = try b.channelLayerNorm(n.headNorm, x, channels: c, eps: eps)
        x = b.add("flatten", .flatten, [x], ["axis": .int(1)])
        let (logits, _) = try b.headOrFeatures(n.headFC, x, inFeatures: c)
        let known = variants.first { $0.1 == stem[0] && $0.2 == depths }
        b.evidence.append("\(n.timm ? "timm" : "torchvision") ConvNeXt layout: \(n.stem.conv).weight \(stem) patchify stem, \(depths.count) stages with \(depths) blocks, final width \(c)")
        b.evidence.append("LayerNorm eps 1e-6 (channels-last in blocks, LayerNorm2d elsewhere), exact GELU, layer scale \(n.scale)")
        var pre = EfficientNetZoo.timmPreprocessing(config) ?? .imagenet
        if EfficientNetZoo.timmPreprocessing(config) == nil, !n.timm, let k = known {
            pre = Preprocessing(inputSize: [224, 224], resizeShorter: k.3, interpolation: "bilinear")
        }
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: known?.0 ?? "convnext (custom: width \(stem[0]), depths \(depths))", preprocessing: pre)
    }
}
