import WconvFormats
import WconvTensor

/// Padding of a layout's convolutions, tracking the square spatial size through the network:
/// PyTorch's symmetric (k-1)/2, or TensorFlow's 'same' for the size at that conv (total padding
/// (⌈i/s⌉-1)·s + k - i, the odd pixel at the bottom/right). efficientnet_pytorch computes 'same'
/// once at construction from its configured image size (Conv2dStaticSamePadding); timm's `tf_`
/// models compute it from each input (Conv2dSame). Both equal this at the size tracked here.
struct SpatialTracker {
    var tfSame: Bool
    var size: Int

    /// Pads [top, left, bottom, right] for a k×k conv with `stride` at the current size; advances the size.
    mutating func pads(kernel k: Int, stride s: Int) -> [Int] {
        guard tfSame else {
            let p = (k - 1) / 2
            size = max((size + 2 * p - k) / s + 1, 1)
            return [p, p, p, p]
        }
        let out = (size + s - 1) / s
        let total = max((out - 1) * s + k - size, 0)
        size = out
        return [total / 2, total / 2, total - total / 2, total - total / 2]
    }
}

/// The modules of one MBConv / depthwise-separable block, by name (each conv with its BatchNorm).
struct MBConvParts {
    var expand: (conv: String, bn: String)?
    var depthwise: (conv: String, bn: String)
    var se: (reduce: String, expand: String)?
    var project: (conv: String, bn: String)
}

extension GraphBuilder {
    /// A conv whose padding comes from `spatial` (kernel read from the weight).
    func paddedConv(_ prefix: String, _ x: String, inChannels: Int, stride: Int = 1, spatial: inout SpatialTracker) throws -> (String, Int) {
        let w = try require(prefix + ".weight", rank: 4)
        guard w[2] == w[3] else { throw RecognitionFailure("conv '\(prefix)' kernel \(w[2])×\(w[3]) is not square") }
        return try conv(prefix, x, inChannels: inChannels, stride: stride, pads: spatial.pads(kernel: w[2], stride: stride))
    }

    /// expand 1×1 (+BN+act) → depthwise k×k with the stride (+BN+act) → squeeze-excitation (act,
    /// sigmoid gate) → project 1×1 (+BN) → residual add when stride 1 and channels unchanged
    /// (efficientnet_pytorch's id_skip, timm's has_skip; drop-connect is identity in eval).
    func mbconv(_ name: String, _ parts: MBConvParts, _ x: String, inChannels c: Int, stride: Int, act: Op,
                spatial: inout SpatialTracker, eps: Double, momentum: Double) throws -> (String, Int) {
        var y = x, ch = c
        if let e = parts.expand {
            (y, ch) = try paddedConv(e.conv, y, inChannels: ch, spatial: &spatial)
            y = self.act(act, e.bn + ".act", try bn(e.bn, y, channels: ch, eps: eps, momentum: momentum))
        }
        let dw = try require(parts.depthwise.conv + ".weight", rank: 4)
        guard dw[1] == 1, dw[0] == ch else {
            throw RecognitionFailure("'\(parts.depthwise.conv)' weight \(dw) is not a depthwise conv over \(ch) channels")
        }
        (y, ch) = try paddedConv(parts.depthwise.conv, y, inChannels: ch, stride: stride, spatial: &spatial)
        y = self.act(act, parts.depthwise.bn + ".act", try bn(parts.depthwise.bn, y, channels: ch, eps: eps, momentum: momentum))
        if let se = parts.se {
            y = try squeezeExcite(name + ".se", reduce: se.reduce, expand: se.expand, y, channels: ch, act: act, gate: .sigmoid)
        }
        (y, ch) = try paddedConv(parts.project.conv, y, inChannels: ch, spatial: &spatial)
        y = try bn(parts.project.bn, y, channels: ch, eps: eps, momentum: momentum)
        if stride == 1 && ch == c { y = add(name + ".add", .add, [y, x]) }
        return (y, ch)
    }
}

/// EfficientNet in the layouts of efficientnet_pytorch (lukemelas; also efficientnet_lite_pytorch,
/// which shares its names) and timm. Called by `EfficientNetFamily` when the keys say so.
enum EfficientNetZoo {
    /// efficientnet_pytorch B0–B8 and L2: (name, stem width, blocks, head width, image size, dropout).
    static let pytorchB: [(String, Int, Int, Int, Int, Double)] = [
        ("b0", 32, 16, 1280, 224, 0.2), ("b1", 32, 23, 1280, 240, 0.2), ("b2", 32, 23, 1408, 260, 0.3),
        ("b3", 40, 26, 1536, 300, 0.3), ("b4", 48, 32, 1792, 380, 0.4), ("b5", 48, 39, 2048, 456, 0.4),
        ("b6", 56, 45, 2304, 528, 0.5), ("b7", 64, 55, 2560, 600, 0.5), ("b8", 72, 61, 2816, 672, 0.5),
        ("l2", 136, 88, 5504, 800, 0.5),
    ]
    /// efficientnet_lite_pytorch Lite0–4 (stem 32 and head 1280 fixed): (name, blocks, last block width, image size, dropout).
    static let pytorchLite: [(String, Int, Int, Int, Double)] = [
        ("lite0", 16, 320, 224, 0.2), ("lite1", 21, 320, 240, 0.2), ("lite2", 21, 352, 260, 0.3),
        ("lite3", 24, 384, 280, 0.3), ("lite4", 30, 448, 300, 0.3),
    ]

    /// Stride of each block: the B0 stage table [1,2,2,2,1,2,1] applied to the stage starts when
    /// there are seven stages; otherwise stride 2 at every stage start but the first (reported).
    static func strides(stageOf: [Int], stageCount: Int, _ b: GraphBuilder) -> [Int] {
        let table = EfficientNetFamily.stageStrides
        if stageCount != table.count {
            b.evidence.append("\(stageCount) stages (every B/Lite variant has 7): stride 2 assumed at each stage start but the first, an approximation")
        }
        return stageOf.indices.map { i in
            guard i == 0 || stageOf[i] != stageOf[i - 1] else { return 1 }
            return stageCount == table.count ? table[stageOf[i]] : (stageOf[i] == 0 ? 1 : 2)
        }
    }

    /// efficientnet_pytorch (B0–B8, L2) / efficientnet_lite_pytorch (Lite0–4): `_conv_stem`, `_bn0`, blocks `_blocks.N`
    /// (`_expand_conv`/`_bn0`, `_depthwise_conv`/`_bn1`, `_se_reduce`/`_se_expand`, `_project_conv`/`_bn2`),
    /// `_conv_head`, `_bn1`, `_fc`. Blocks are numbered flat: a stage starts where a block changes the
    /// channel count (within a stage every block keeps it). Every conv uses TF 'same' padding computed
    /// for the variant's image size (224 for custom widths: the same padding as any size divisible by 32).
    /// BatchNorm eps 1e-3, momentum 0.01. Swish with squeeze-excitation (B-series); without any SE the
    /// file is EfficientNet-Lite, whose package uses ReLU6 (efficientnet_pytorch itself ships no Lite).
    static func buildPyTorch(_ b: GraphBuilder) throws -> ModelGraph {
        let stem = try b.require("_conv_stem.weight", rank: 4)
        guard stem[1] == 3 else { throw RecognitionFailure("_conv_stem.weight \(stem) does not take 3 input channels") }
        let ids = b.children("_blocks")
        guard !ids.isEmpty, ids == Array(0..<ids.count) else { throw RecognitionFailure("'_blocks.N' are not numbered 0..<\(ids.count)") }
        var io: [(Int, Int)] = []
        for i in ids {
            let p = "_blocks.\(i)"
            let dw = try b.require("\(p)._depthwise_conv.weight", rank: 4)
            let cin = try b.shape("\(p)._expand_conv.weight").map { $0.count == 4 ? $0[1] : -1 } ?? dw[0]
            io.append((cin, try b.require("\(p)._project_conv.weight", rank: 4)[0]))
        }
        var stageOf: [Int] = []
        for (i, (cin, cout)) in io.enumerated() { stageOf.append(i == 0 ? 0 : stageOf[i - 1] + (cin != cout ? 1 : 0)) }
        let stageCount = (stageOf.last ?? 0) + 1
        let withSE = ids.filter { b.has("_blocks.\($0)._se_reduce.weight") }.count
        guard withSE == 0 || withSE == ids.count else {
            throw RecognitionFailure("\(withSE) of \(ids.count) blocks have squeeze-excitation (B-series: all, Lite: none)")
        }
        let lite = withSE == 0
        let headWidth = b.shape("_conv_head.weight")?.first ?? 0
        let last = io.last?.1 ?? 0
        var variant: String?, imageSize = 224, dropout = 0.2
        if lite, let v = pytorchLite.first(where: { $0.1 == ids.count && $0.2 == last && stem[0] == 32 && headWidth == 1280 }) {
            (variant, imageSize, dropout) = (v.0, v.3, v.4)
        } else if !lite, let v = pytorchB.first(where: { $0.1 == stem[0] && $0.2 == ids.count && $0.3 == headWidth }) {
            (variant, imageSize, dropout) = (v.0, v.4, v.5)
        }
        let act: Op = lite ? .relu6 : .silu
        let (eps, momentum) = (1e-3, 0.01)
        var spatial = SpatialTracker(tfSame: true, size: imageSize)
        var (x, c) = try b.paddedConv("_conv_stem", "input", inChannels: 3, stride: 2, spatial: &spatial)
        x = b.act(act, "_bn0.act", try b.bn("_bn0", x, channels: c, eps: eps, momentum: momentum))
        let stride = strides(stageOf: stageOf, stageCount: stageCount, b)
        for i in ids {
            let p = "_blocks.\(i)"
            let parts = MBConvParts(
                expand: b.has("\(p)._expand_conv.weight") ? ("\(p)._expand_conv", "\(p)._bn0") : nil,
                depthwise: ("\(p)._depthwise_conv", "\(p)._bn1"),
                se: lite ? nil : ("\(p)._se_reduce", "\(p)._se_expand"),
                project: ("\(p)._project_conv", "\(p)._bn2"))
            (x, c) = try b.mbconv(p, parts, x, inChannels: c, stride: stride[i], act: act, spatial: &spatial, eps: eps, momentum: momentum)
        }
        (x, c) = try b.paddedConv("_conv_head", x, inChannels: c, spatial: &spatial)
        x = b.act(act, "_bn1.act", try b.bn("_bn1", x, channels: c, eps: eps, momentum: momentum))
        let (logits, _) = try b.headOrFeatures("_fc", b.poolFlatten(x), inFeatures: c, dropout: dropout, dropoutName: "_dropout")
        let name = variant.map { "efficientnet_pytorch_\($0)" }
        b.evidence.append("efficientnet_pytorch layout: _conv_stem.weight \(stem), \(ids.count) blocks _blocks.N in \(stageCount) stages (a stage starts where a block changes channels), _conv_head → \(c)")
        b.evidence.append(lite ? "no squeeze-excitation: EfficientNet-Lite (efficientnet_lite_pytorch's layout), ReLU6 activations"
                               : "squeeze-excitation (_se_reduce/_se_expand) in every block: B-series, swish activations")
        b.evidence.append(name.map { "stem \(stem[0]), \(ids.count) blocks, last width \(last), head \(headWidth) match \($0): TF 'same' padding for its \(imageSize)×\(imageSize) input, BatchNorm eps 1e-3" }
                          ?? "widths/depths match no \(lite ? "Lite0–4" : "B0–B8/L2") preset: TF 'same' padding computed for a 224×224 input (the same for any size divisible by 32), BatchNorm eps 1e-3")
        let pre = Preprocessing(inputSize: [imageSize, imageSize], resizeShorter: imageSize, interpolation: "bilinear")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: EfficientNetFamily.name,
                            variant: name ?? "efficientnet_pytorch\(lite ? "_lite" : "") (custom: stem \(stem[0]), \(ids.count) blocks)",
                            preprocessing: pre)
    }

    /// timm EfficientNet / EfficientNet-Lite: `conv_stem`, `bn1`, stages `blocks.S.M` of a depthwise-separable
    /// first block (`conv_dw`/`bn1`, `se`, `conv_pw`/`bn2`) and MBConv blocks (`conv_pw`/`bn1`,
    /// `conv_dw`/`bn2`, `se.conv_reduce`/`se.conv_expand`, `conv_pwl`/`bn3`), `conv_head`, `bn2`,
    /// `classifier`. `efficientnet_*` and `tf_efficientnet_*` share every name: config.json's
    /// `architecture` (timm writes it) selects TF 'same' padding and BatchNorm eps 1e-3 for `tf_`; without
    /// it the PyTorch-native variant (symmetric padding, eps 1e-5) is assumed and reported. Without SE
    /// the model is Lite (ReLU6); MnasNet shares the names but uses ReLU, which only config.json tells.
    static func buildTimm(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let stem = try b.require("conv_stem.weight", rank: 4)
        guard stem[1] == 3 else { throw RecognitionFailure("conv_stem.weight \(stem) does not take 3 input channels") }
        guard b.has("conv_head.weight"), b.has("bn2.running_mean") else {
            throw RecognitionFailure("no 'conv_head' with BatchNorm 'bn2' (timm EfficientNet head; MobileNetV3 has none)")
        }
        let arch = config?["architecture"]?.string?.lowercased()
        if let arch, !arch.contains("efficientnet") {
            throw RecognitionFailure("config.json architecture '\(arch)' is not an EfficientNet")
        }
        let stages = b.children("blocks")
        guard !stages.isEmpty, stages == Array(0..<stages.count) else { throw RecognitionFailure("'blocks.S' are not numbered 0..<\(stages.count)") }
        var blocks: [(String, MBConvParts)] = []
        var stageOf: [Int] = []
        for s in stages {
            for m in b.children("blocks.\(s)") {
                let p = "blocks.\(s).\(m)"
                let se: (String, String)? = b.has("\(p).se.conv_reduce.weight") ? ("\(p).se.conv_reduce", "\(p).se.conv_expand") : nil
                if b.has("\(p).conv_pwl.weight") {
                    blocks.append((p, MBConvParts(expand: ("\(p).conv_pw", "\(p).bn1"), depthwise: ("\(p).conv_dw", "\(p).bn2"),
                                                  se: se, project: ("\(p).conv_pwl", "\(p).bn3"))))
                } else if b.has("\(p).conv_dw.weight"), b.has("\(p).conv_pw.weight") {
                    blocks.append((p, MBConvParts(expand: nil, depthwise: ("\(p).conv_dw", "\(p).bn1"), se: se,
                                                  project: ("\(p).conv_pw", "\(p).bn2"))))
                } else {
                    throw RecognitionFailure("'\(p)' is neither a timm MBConv (conv_pw/conv_dw/conv_pwl) nor a depthwise-separable block (conv_dw/conv_pw)")
                }
                stageOf.append(s)
            }
        }
        let withSE = blocks.filter { $0.1.se != nil }.count
        let lite = withSE == 0
        let tf = arch?.hasPrefix("tf_") ?? false
        let act: Op = lite ? .relu6 : .silu
        let eps = tf ? 1e-3 : 1e-5
        let pre = timmPreprocessing(config) ?? .imagenet
        var spatial = SpatialTracker(tfSame: tf, size: pre.inputSize.first ?? 224)
        var (x, c) = try b.paddedConv("conv_stem", "input", inChannels: 3, stride: 2, spatial: &spatial)
        x = b.act(act, "bn1.act", try b.bn("bn1", x, channels: c, eps: eps))
        let stride = strides(stageOf: stageOf, stageCount: stages.count, b)
        for (i, (p, parts)) in blocks.enumerated() {
            (x, c) = try b.mbconv(p, parts, x, inChannels: c, stride: stride[i], act: act, spatial: &spatial, eps: eps, momentum: 0.1)
        }
        (x, c) = try b.paddedConv("conv_head", x, inChannels: c, spatial: &spatial)
        x = b.act(act, "bn2.act", try b.bn("bn2", x, channels: c, eps: eps))
        let (logits, _) = try b.headOrFeatures("classifier", b.poolFlatten(x), inFeatures: c)
        b.evidence.append("timm EfficientNet layout: conv_stem.weight \(stem), \(blocks.count) blocks in \(stages.count) stages blocks.S.M, conv_head/bn2 → \(c)")
        b.evidence.append(lite ? "no squeeze-excitation: EfficientNet-Lite, ReLU6 activations\(arch == nil ? " (MnasNet shares these names but uses ReLU; config.json's architecture would tell)" : "")"
                               : "squeeze-excitation in \(withSE) blocks, SiLU activations")
        b.evidence.append(arch.map { "config.json architecture '\($0)': \(tf ? "TF 'same' padding (computed for the \(pre.inputSize.first ?? 224)-pixel input; timm recomputes it per input size), BatchNorm eps 1e-3" : "PyTorch padding, BatchNorm eps 1e-5")" }
                          ?? "no config.json: timm's PyTorch-native efficientnet (symmetric padding, BatchNorm eps 1e-5) assumed; tf_efficientnet weights need their config.json")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: EfficientNetFamily.name,
                            variant: arch.map { "timm \($0)" } ?? "timm efficientnet\(lite ? "_lite" : "") (stem \(stem[0]), \(blocks.count) blocks)",
                            preprocessing: pre)
    }

    /// Preprocessing from a timm config.json's `pretrained_cfg` (input_size, crop_pct, interpolation, mean, std).
    static func timmPreprocessing(_ config: JSONValue?) -> Preprocessing? {
        guard let cfg = config?["pretrained_cfg"], let size = cfg["input_size"]?.intArray, size.count == 3,
              size[1] > 0, size[2] > 0 else { return nil }
        var p = Preprocessing(inputSize: [size[1], size[2]])
        let crop = cfg["crop_pct"]?.double ?? 0.875
        p.resizeShorter = crop > 0 && crop <= 1 ? Int((Double(min(size[1], size[2])) / crop).rounded(.down)) : size[1]
        if let m = cfg["mean"]?.doubleArray, m.count == 3 { p.mean = m }
        if let s = cfg["std"]?.doubleArray, s.count == 3 { p.std = s }
        if let i = cfg["interpolation"]?.string, ["bilinear", "bicubic", "nearest"].contains(i) { p.interpolation = i }
        return p
    }
}
