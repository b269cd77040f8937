import WconvFormats
import WconvTensor

/// torchvision MobileNetV3 large/small: `features.0` stem (3×3 s2, hardswish), blocks
/// `features.N.block.K` (expand, depthwise, optional squeeze-excitation `fc1`/`fc2` with ReLU and
/// hardsigmoid gate, projection), `features.last` 1×1 conv + hardswish, `classifier.0` Linear,
/// hardswish, dropout, `classifier.3` Linear. BatchNorm eps 1e-3.
///
/// Neither strides nor block activations are in the weights. Large has 15 blocks (stride 2 at
/// blocks 2, 4, 7, 13), small has 11 (stride 2 at 1, 2, 4, 9), for every width multiplier.
/// The activation rule that fits both configurations exactly: a block uses ReLU while the
/// network's output stride after it is at most 8, hardswish from the block that reaches stride 16
/// on (large: blocks 1–6 ReLU; small: blocks 1–3 ReLU). Other block counts fall back to stride 2
/// where a block widens, with the same activation rule (reported as an approximation).
enum MobileNetV3Family: ArchitectureFamily {
    static let name = "mobilenet_v3"
    static let stride2: [Int: Set<Int>] = [15: [2, 4, 7, 13], 11: [1, 2, 4, 9]]

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        guard b.isConvNormAct("features.0") else { throw RecognitionFailure("no 'features.0.0.weight' + 'features.0.1' stem") }
        guard b.hasModule("features.1.block") else { throw RecognitionFailure("no 'features.1.block' (MobileNetV3 blocks are features.N.block.K)") }
        guard !b.hasModule("features.1.0") else { throw RecognitionFailure("features.1 holds nested blocks (EfficientNet layout), not MobileNetV3's flat blocks") }
        let top = b.children("features")
        guard let last = top.last, top.first == 0, top.count == last + 1 else { throw RecognitionFailure("features indices are not contiguous: \(top)") }
        let blocks = Array(top.dropFirst().dropLast())
        guard blocks.allSatisfy({ b.hasModule("features.\($0).block") }) else { throw RecognitionFailure("not every features.N (1..<\(last)) is a 'block'") }
        let table = stride2[blocks.count]
        let eps = 1e-3, mom = 0.01
        var (x, c) = try b.convNormAct("features.0", "input", inChannels: 3, stride: 2, act: .hardSwish, eps: eps, momentum: mom)
        var outStride = 2
        var reluBlocks: [Int] = []
        var seBlocks: [Int] = []
        for n in blocks {
            let p = "features.\(n).block"
            let kids = b.children(p)
            let outC = kids.last.flatMap { b.shape("\(p).\($0).0.weight")?.first } ?? c
            let stride = table.map { $0.contains(n) ? 2 : 1 } ?? (outC > c ? 2 : 1)
            outStride *= stride
            let act: Op = outStride >= 16 ? .hardSwish : .relu
            if act == .relu { reluBlocks.append(n) }
            if kids.contains(where: { b.has("\(p).\($0).fc1.weight") }) { seBlocks.append(n) }
            let (y, ch, _) = try b.invertedResidualBody(p, x, inChannels: c, stride: stride, act: act,
                                                         seAct: .relu, seGate: .hardSigmoid, eps: eps, momentum: mom)
            x = (stride == 1 && ch == c) ? b.add("features.\(n).add", .add, [y, x]) : y
            c = ch
        }
        (x, c) = try b.convNormAct("features.\(last)", x, inChannels: c, act: .hardSwish, eps: eps, momentum: mom)
        let pooled = b.poolFlatten(x)
        let lin = b.children("classifier").filter { b.shape("classifier.\($0).weight")?.count == 2 }
        guard lin.count == 2 else { throw RecognitionFailure("classifier has \(lin.count) Linear layers, MobileNetV3 has 2 (classifier.0, classifier.3)") }
        var (h, f) = try b.linear("classifier.\(lin[0])", pooled, inFeatures: c)
        h = b.act(.hardSwish, "classifier.\(lin[0] + 1)", h)
        h = b.add("classifier.\(lin[0] + 2)", .dropout, [h], ["ratio": .float(0.2)])
        let (logits, classes) = try b.linear("classifier.\(lin[1])", h, inFeatures: f, output: "logits")
        f = classes
        let size = blocks.count == 15 ? "large" : (blocks.count == 11 ? "small" : nil)
        b.evidence.append("stem features.0.0.weight \(try b.require("features.0.0.weight")), \(blocks.count) blocks features.1..\(last - 1) ('block' children), head conv features.\(last) → \(c)")
        b.evidence.append(size.map { "\(blocks.count) blocks: torchvision mobilenet_v3_\($0) strides" }
                          ?? "\(blocks.count) blocks (large 15, small 11): stride 2 assumed where a block widens — approximate")
        b.evidence.append("ReLU in blocks \(reluBlocks) (output stride ≤ 8), hardswish after; squeeze-excitation (hardsigmoid gate) in blocks \(seBlocks)")
        b.evidence.append("classifier Linear layers classifier.\(lin[0]), classifier.\(lin[1]); \(classes) classes")
        return try b.finish(inputs: [imageInput], outputs: [logits], family: name,
                            variant: size.map { "mobilenet_v3_\($0)" } ?? "mobilenet_v3 (custom, \(blocks.count) blocks)",
                            preprocessing: .imagenet)
    }
}
