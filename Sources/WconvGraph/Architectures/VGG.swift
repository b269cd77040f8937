import WconvFormats
import WconvTensor

/// torchvision VGG: `features.N` convs (with `features.N+1` BatchNorm in the `_bn` variants),
/// ReLU after each, max pools where the module indices leave a gap; `avgpool` (adaptive 7×7);
/// `classifier.{0,3,6}` Linear layers with ReLU + Dropout between them.
/// Pools cannot be seen in a state dict: a gap in the module indices after a conv (beyond its BN
/// and ReLU) is a pool, and one trailing pool is assumed after the last conv, as every torchvision
/// configuration (A, B, D, E) ends with 'M'. classifier.0's in-features (C·7·7) confirm the 7×7 pool.
enum VGGFamily: ArchitectureFamily {
    static let name = "vgg"

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let idx = b.children("features")
        let convs = idx.filter { (b.shape("features.\($0).weight")?.count ?? 0) == 4 }
        guard !convs.isEmpty else { throw RecognitionFailure("no 4-D 'features.N.weight' convolutions") }
        guard !b.hasModule("features.0.0"), !b.hasModule("features.denseblock1") else {
            throw RecognitionFailure("'features' holds nested blocks, not a flat VGG conv stack")
        }
        let withBN = b.has("features.\(convs[0] + 1).running_mean")
        let step = withBN ? 3 : 2
        var x = "input", c = 3
        var pools = 0
        for (i, ci) in convs.enumerated() {
            let (y, ch) = try b.conv("features.\(ci)", x, inChannels: c)
            guard try b.require("features.\(ci).weight")[2] == 3 else { throw RecognitionFailure("features.\(ci) is not a 3×3 conv") }
            x = y; c = ch
            if withBN { x = try b.bn("features.\(ci + 1)", x, channels: c) }
            x = b.act(.relu, "features.\(ci + step - 1)", x)
            let next = i + 1 < convs.count ? convs[i + 1] : ci + step + 1
            let gap = next - (ci + step)
            guard gap >= 0 && gap <= 1 else {
                throw RecognitionFailure("module indices jump from features.\(ci) to features.\(next): not a VGG conv/\(withBN ? "bn/" : "")relu[/pool] sequence")
            }
            if gap == 1 {
                x = b.add("features.\(ci + step)", .maxPool2d, [x], ["kernel": .ints([2, 2]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 0, 0]), "ceilMode": .int(0)])
                pools += 1
            }
        }
        b.evidence.append("\(convs.count) 3×3 convs at features.\(convs.map(String.init).joined(separator: ",")) \(withBN ? "each followed by BatchNorm" : "without BatchNorm"); \(pools) max pools from index gaps (last assumed)")
        let pooled = b.poolFlatten(x, adaptive: [7, 7])
        let lin = b.children("classifier").filter { b.shape("classifier.\($0).weight")?.count == 2 }
        if lin.isEmpty {
            let (features, _) = try b.headOrFeatures("classifier.0", pooled, inFeatures: c * 49)
            return try b.finish(inputs: [imageInput], outputs: [features], family: name,
                                variant: "vgg\(convs.count)\(withBN ? "_bn" : "") backbone", preprocessing: .imagenet)
        }
        guard lin.first == 0 else { throw RecognitionFailure("classifier does not start with a Linear at classifier.0") }
        var h = pooled, f = c * 49
        for (i, li) in lin.enumerated() {
            let last = i == lin.count - 1
            (h, f) = try b.linear("classifier.\(li)", h, inFeatures: f, output: last ? "logits" : nil)
            if !last {
                h = b.act(.relu, "classifier.\(li + 1)", h)
                h = b.add("classifier.\(li + 2)", .dropout, [h], ["ratio": .float(0.5)])
            }
        }
        b.evidence.append("classifier Linear layers at \(lin.map { "classifier.\($0)" }.joined(separator: ", ")); classifier.0 takes \(c)·7·7 features; \(f) classes")
        let depth = convs.count + lin.count
        return try b.finish(inputs: [imageInput], outputs: [h], family: name,
                            variant: "vgg\(depth)\(withBN ? "_bn" : "")", preprocessing: .imagenet)
    }
}
