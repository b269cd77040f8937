import WconvFormats
import WconvTensor

/// torchvision MobileNetV2: `features.0` stem (3×3 s2, ReLU6), inverted residuals
/// `features.N.conv.{…}` (expand 1×1 + ReLU6 when t > 1, depthwise 3×3 + ReLU6, bare 1×1
/// projection + BatchNorm), `features.last` 1×1 conv + ReLU6, `classifier.1` Linear.
/// Strides are not in the weights: torchvision's standard setting has 17 blocks with stride 2 at
/// blocks 2, 4, 7 and 14 for every width multiplier, so a 17-block file uses that table; other
/// block counts fall back to stride 2 where a block widens (reported as an approximation).
enum MobileNetV2Family: ArchitectureFamily {
    static let name = "mobilenet_v2"
    static let standardStride2: Set<Int> = [2, 4, 7, 14]

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        guard b.isConvNormAct("features.0") else { throw RecognitionFailure("no 'features.0.0.weight' + 'features.0.1' stem") }
        guard b.hasModule("features.1.conv") else { throw RecognitionFailure("no 'features.1.conv' (MobileNetV2 blocks are features.N.conv.K)") }
        let top = b.children("features")
        guard let last = top.last, top.first == 0, top.count == last + 1 else { throw RecognitionFailure("features indices are not contiguous: \(top)") }
        let blocks = Array(top.dropFirst().dropLast())
        guard blocks.allSatisfy({ b.hasModule("features.\($0).conv") }) else { throw RecognitionFailure("not every features.N (1..<\(last)) is an inverted residual 'conv' block") }
        let standard = blocks.count == 17
        var (x, c) = try b.convNormAct("features.0", "input", inChannels: 3, stride: 2, act: .relu6, eps: 1e-5)
        var descs: [String] = []
        for n in blocks {
            let p = "features.\(n).conv"
            let kids = b.children(p)
            var outC = c
            if let lk = kids.dropLast().last, let w = b.shape("\(p).\(lk).weight") { outC = w[0] }
            let stride = standard ? (standardStride2.contains(n) ? 2 : 1) : (outC > c ? 2 : 1)
            let (y, ch, d) = try b.invertedResidualBody(p, x, inChannels: c, stride: stride, act: .relu6,
                                                         seAct: .relu, seGate: .sigmoid, eps: 1e-5)
            x = (stride == 1 && ch == c) ? b.add("features.\(n).add", .add, [y, x]) : y
            descs.append("\(n):\(d)")
            c = ch
        }
        (x, c) = try b.convNormAct("features.\(last)", x, inChannels: c, act: .relu6, eps: 1e-5)
        let pooled = b.poolFlatten(x)
        let (logits, _) = try b.headOrFeatures("classifier.1", pooled, inFeatures: c, dropout: 0.2, dropoutName: "classifier.0")
        let stem = try b.require("features.0.0.weight")
        b.evidence.append("stem features.0.0.weight \(stem), \(blocks.count) inverted residual blocks features.1..\(last - 1) ('conv' children), head conv features.\(last) → \(c), ReLU6")
        b.evidence.append(standard ? "17 blocks: torchvision's standard strides (stride 2 at blocks 2, 4, 7, 14)"
                                   : "\(blocks.count) blocks (standard is 17): stride 2 assumed where a block widens — approximate")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: "mobilenet_v2" + (stem[0] == 32 ? "" : " (custom width: stem \(stem[0]))"),
                            preprocessing: .imagenet)
    }
}
