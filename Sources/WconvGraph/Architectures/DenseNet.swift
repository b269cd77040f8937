import WconvFormats
import OrderedCollections
import WconvTensor

/// torchvision DenseNet: `features.{conv0,norm0}`, `features.denseblockK.denselayerJ.{norm1,conv1,norm2,conv2}`,
/// `features.transitionK.{norm,conv}`, `features.norm5`, `classifier`. Growth rate and block sizes
/// come from the shapes and key counts. Old checkpoints name layers `norm.1`/`conv.2`; torchvision's
/// loader renames them and so does this recogniser (rule reported).
enum DenseNetFamily: ArchitectureFamily {
    static let name = "densenet"

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        guard b.has("features.conv0.weight") else { throw RecognitionFailure("no 'features.conv0.weight' (torchvision DenseNet stem)") }
        // Legacy names: denselayerJ.norm.1.weight → denselayerJ.norm1.weight (torchvision's own rule).
        let legacy = b.rename(rule: "DenseNet legacy key 'denselayerJ.norm.1' → 'denselayerJ.norm1' (torchvision's load rule)",
                              DenseNetLegacyKeys.rename)
        if legacy > 0 { b.evidence.append("renamed \(legacy) legacy keys 'denselayerJ.norm.1' → 'denselayerJ.norm1'") }
        var (x, c) = try b.conv("features.conv0", "input", inChannels: 3, stride: 2)
        x = try b.bn("features.norm0", x, channels: c)
        x = b.act(.relu, "features.relu0", x)
        x = b.add("features.pool0", .maxPool2d, [x], ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceilMode": .int(0)])
        var blocks: [Int] = []
        var growth = 0
        var k = 1
        while b.hasModule("features.denseblock\(k)") {
            var layers = 0
            while b.hasModule("features.denseblock\(k).denselayer\(layers + 1)") { layers += 1 }
            guard layers > 0 else { throw RecognitionFailure("features.denseblock\(k) has no denselayer1") }
            var feats = [x]
            var total = c
            for j in 1...layers {
                let p = "features.denseblock\(k).denselayer\(j)"
                let inp = feats.count == 1 ? feats[0] : b.add("\(p).cat", .concat, feats, ["axis": .int(1)])
                var h = try b.bn("\(p).norm1", inp, channels: total)
                h = b.act(.relu, "\(p).relu1", h)
                var ch: Int
                (h, ch) = try b.conv("\(p).conv1", h, inChannels: total)
                h = try b.bn("\(p).norm2", h, channels: ch)
                h = b.act(.relu, "\(p).relu2", h)
                (h, ch) = try b.conv("\(p).conv2", h, inChannels: ch)
                if growth == 0 { growth = ch }
                feats.append(h)
                total += ch
            }
            x = b.add("features.denseblock\(k)", .concat, feats, ["axis": .int(1)])
            c = total
            blocks.append(layers)
            if b.hasModule("features.transition\(k)") {
                let p = "features.transition\(k)"
                x = try b.bn("\(p).norm", x, channels: c)
                x = b.act(.relu, "\(p).relu", x)
                (x, c) = try b.conv("\(p).conv", x, inChannels: c)
                x = b.add("\(p).pool", .avgPool2d, [x], ["kernel": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 0, 0]), "ceilMode": .int(0), "countIncludePad": .int(1)])
            }
            k += 1
        }
        guard !blocks.isEmpty else { throw RecognitionFailure("no 'features.denseblock1'") }
        x = try b.bn("features.norm5", x, channels: c)
        x = b.act(.relu, "relu", x)
        let pooled = b.poolFlatten(x)
        let (logits, _) = try b.headOrFeatures("classifier", pooled, inFeatures: c)
        b.evidence.append("\(blocks.count) dense blocks with \(blocks) layers, growth rate \(growth) (conv2 output channels), stem \(try b.require("features.conv0.weight")[0]) channels")
        let depth = 2 * blocks.reduce(0, +) + blocks.count + 1
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: "densenet\(depth)", preprocessing: .imagenet)
    }
}

/// torchvision's DenseNet legacy-key pattern without Foundation regex: `…denselayerN.(norm|relu|conv).(1|2).(weight|bias|running_mean|running_var)`.
enum DenseNetLegacyKeys {
    static func rename(_ key: String) -> String? {
        var parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4 else { return nil }
        let n = parts.count
        let kinds: Set<String> = ["norm", "relu", "conv"]
        let leaf: Set<String> = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
        guard leaf.contains(parts[n - 1]), parts[n - 2] == "1" || parts[n - 2] == "2", kinds.contains(parts[n - 3]),
              parts[n - 4].hasPrefix("denselayer") else { return nil }
        parts[n - 3] += parts[n - 2]
        parts.remove(at: n - 2)
        return parts.joined(separator: ".")
    }
}
