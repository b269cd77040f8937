import WconvFormats
import WconvTensor

/// torchvision ResNet / ResNeXt / Wide ResNet: `conv1`, `bn1`, `layer1..N.B.{conv1,bn1,conv2,bn2[,conv3,bn3]}`,
/// `downsample.{0,1}`, `fc`. Block type from the presence of `conv3`; groups from conv weight
/// shapes; a block's stride is 2 exactly when it is the first of layer ≥ 2 and has a downsample
/// (torchvision adds one whenever stride ≠ 1, and layer2..4 all start with stride 2).
/// timm's ResNets use the same names; its ResNet-D variants add a deep stem (`conv1.0/1/3/4/6`:
/// three 3×3 convs, the first with stride 2) and average-pool downsampling (`downsample.1/2`: a
/// 2×2 stride-2 avg pool, ceil mode, padding not counted, before a 1×1 conv; no pool at stride 1).
enum ResNetFamily: ArchitectureFamily {
    static let name = "resnet"

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let deepStem = !b.has("conv1.weight") && b.has("conv1.0.weight") && b.has("conv1.6.weight")
        let stem = try b.require(deepStem ? "conv1.0.weight" : "conv1.weight", rank: 4)
        guard stem[1] == 3 else { throw RecognitionFailure("\(deepStem ? "conv1.0" : "conv1").weight \(stem) does not take 3 input channels") }
        guard b.has("layer1.0.conv1.weight") else { throw RecognitionFailure("no 'layer1.0.conv1.weight' (torchvision ResNet block naming)") }
        let bottleneck = b.has("layer1.0.conv3.weight")
        var layers: [Int] = []
        var li = 1
        while b.hasModule("layer\(li)") { layers.append(b.children("layer\(li)").count); li += 1 }
        b.evidence.append("\(deepStem ? "conv1.0" : "conv1").weight \(stem) stem, bn1, \(layers.count) stages layer1..layer\(layers.count) with \(layers) blocks")
        b.evidence.append(bottleneck ? "bottleneck blocks (conv1/conv2/conv3 per block)" : "basic blocks (conv1/conv2 per block)")

        var x = "input"
        var (y, c): (String, Int)
        if deepStem {
            (y, c) = try b.conv("conv1.0", x, inChannels: 3, stride: 2)
            y = b.act(.relu, "conv1.2", try b.bn("conv1.1", y, channels: c))
            (y, c) = try b.conv("conv1.3", y, inChannels: c)
            y = b.act(.relu, "conv1.5", try b.bn("conv1.4", y, channels: c))
            (y, c) = try b.conv("conv1.6", y, inChannels: c)
            b.evidence.append("deep stem conv1.0/conv1.3/conv1.6 (timm ResNet-D)")
        } else {
            (y, c) = try b.conv("conv1", x, inChannels: 3, stride: 2)
        }
        y = try b.bn("bn1", y, channels: c)
        let c0 = c
        y = b.act(.relu, "relu", y)
        x = b.add("maxpool", .maxPool2d, [y], ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceilMode": .int(0)])
        var groupsSeen = Set<Int>()
        var widthRatio: Double = 1
        var layer1Width = 0
        for (s, n) in layers.enumerated() {
            for blk in 0..<n {
                let p = "layer\(s + 1).\(blk)"
                guard b.has("\(p).conv1.weight") else { throw RecognitionFailure("missing '\(p).conv1.weight' (blocks of layer\(s + 1) are not numbered 0..<\(n))") }
                let avgDown = b.has("\(p).downsample.1.weight") && b.has("\(p).downsample.2.running_mean")
                let down = b.has("\(p).downsample.0.weight") || avgDown
                let stride = (s > 0 && blk == 0 && down) ? 2 : 1
                var (h, ch) = try b.conv("\(p).conv1", x, inChannels: c, stride: bottleneck ? 1 : stride)
                h = try b.bn("\(p).bn1", h, channels: ch)
                h = b.act(.relu, "\(p).relu", h)
                let c2in = ch
                (h, ch) = try b.conv("\(p).conv2", h, inChannels: ch, stride: bottleneck ? stride : 1)
                let g = c2in / (try b.require("\(p).conv2.weight")[1])
                groupsSeen.insert(g)
                h = try b.bn("\(p).bn2", h, channels: ch)
                if bottleneck {
                    h = b.act(.relu, "\(p).relu", h)
                    let width = ch
                    (h, ch) = try b.conv("\(p).conv3", h, inChannels: ch)
                    h = try b.bn("\(p).bn3", h, channels: ch)
                    if s == 0 && blk == 0 { widthRatio = Double(width) / Double(max(ch / 4, 1)); layer1Width = width }
                }
                var identity = x
                if down {
                    var dc: Int
                    if avgDown {
                        if stride > 1 {
                            identity = b.add("\(p).downsample.0", .avgPool2d, [x], ["kernel": .ints([2, 2]), "strides": .ints([stride, stride]),
                                             "pads": .ints([0, 0, 0, 0]), "ceilMode": .int(1), "countIncludePad": .int(0)])
                        }
                        (identity, dc) = try b.conv("\(p).downsample.1", identity, inChannels: c)
                        identity = try b.bn("\(p).downsample.2", identity, channels: dc)
                    } else {
                        (identity, dc) = try b.conv("\(p).downsample.0", x, inChannels: c, stride: stride)
                        identity = try b.bn("\(p).downsample.1", identity, channels: dc)
                    }
                    guard dc == ch else { throw RecognitionFailure("'\(p).downsample' gives \(dc) channels but the block gives \(ch)") }
                } else if ch != c {
                    throw RecognitionFailure("block '\(p)' changes channels \(c) → \(ch) without a downsample")
                }
                let sum = b.add("\(p).add", .add, [h, identity])
                x = b.act(.relu, "\(p).relu", sum)
                c = ch
            }
        }
        let pooled = b.poolFlatten(x)
        let (logits, _) = try b.headOrFeatures("fc", pooled, inFeatures: c)
        let blocks = layers.reduce(0, +)
        let depth = (bottleneck ? 3 : 2) * blocks + 2
        var variant = "resnet\(depth)"
        if groupsSeen.count == 1, let g = groupsSeen.first, g > 1 {
            variant = "resnext\(depth)_\(g)x\(layer1Width / g)d"
            b.evidence.append("grouped 3×3 convs: groups \(g) (conv2 weight in-channels = width / \(g))")
        } else if bottleneck && widthRatio >= 2 {
            variant = "wide_resnet\(depth)_\(Int(widthRatio))"
            b.evidence.append("bottleneck width \(Int(widthRatio))× planes (wide variant)")
        }
        let avgDown = layers.indices.contains { b.has("layer\($0 + 1).0.downsample.1.weight") && !b.has("layer\($0 + 1).0.downsample.0.weight") }
        if deepStem && avgDown { variant += "d" } else if deepStem { variant += "c" }
        if avgDown { b.evidence.append("average-pool downsample (downsample.1 conv after a 2×2 avg pool, timm avg_down)") }
        if c0 != 64 { variant += " (custom width \(c0))" }
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name, variant: variant,
                            preprocessing: .imagenet)
    }
}
