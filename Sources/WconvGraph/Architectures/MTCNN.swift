import WconvFormats
import WconvTensor

/// MTCNN's three face-detection stages in facenet-pytorch's layout (`facenet_pytorch/data/{p,r,o}net.pt`,
/// the `PNet`/`RNet`/`ONet` modules of `facenet_pytorch.models.mtcnn`): unpadded convs `convN` each
/// followed by a per-channel PReLU `preluN`, ceil-mode max pools (which a state dict cannot show, so
/// they are fixed per stage as the package's modules have them), then the heads:
/// - PNet (fully convolutional): conv1-3 (3×3) with a 2×2/2 pool after conv1; 1×1 heads `conv4_2`
///   (box regression, 4 channels) and `conv4_1` → softmax over channels (face probability).
/// - RNet (24×24 input): conv1-2 (3×3) each with a 3×3/2 pool, conv3 (2×2), `dense4` + PReLU,
///   heads `dense5_2` (box) and `dense5_1` → softmax.
/// - ONet (48×48 input): conv1-3 (3×3) with 3×3/2, 3×3/2, 2×2/2 pools, conv4 (2×2), `dense5` +
///   PReLU, heads `dense6_2` (box), `dense6_3` (10 landmark coordinates) and `dense6_1` → softmax.
/// RNet and ONet permute NCHW to NWHC before flattening (`x.permute(0, 3, 2, 1)`, the layout of the
/// original Caffe weights), so the graph transposes the same way. Outputs in the modules' return
/// order: (box, probability) and (box, landmarks, probability) for ONet.
enum MTCNNFamily: ArchitectureFamily {
    static let name = "mtcnn"

    /// One stage: pool (kernel, stride) after each of the conv layers that has one, the flattened
    /// input spatial size of the first dense layer (nil: fully convolutional), its input size, and
    /// the head modules in output order.
    struct Stage {
        var name: String
        var convs: [String]
        var pools: [String: Int]  // conv → pool kernel (stride 2)
        var dense: String?
        var heads: [(module: String, output: String, softmax: Bool)]
        var inputSize: Int?
    }

    static let stages: [Stage] = [
        Stage(name: "pnet", convs: ["conv1", "conv2", "conv3"], pools: ["conv1": 2], dense: nil,
              heads: [("conv4_2", "box", false), ("conv4_1", "probability", true)], inputSize: nil),
        Stage(name: "rnet", convs: ["conv1", "conv2", "conv3"], pools: ["conv1": 3, "conv2": 3], dense: "dense4",
              heads: [("dense5_2", "box", false), ("dense5_1", "probability", true)], inputSize: 24),
        Stage(name: "onet", convs: ["conv1", "conv2", "conv3", "conv4"], pools: ["conv1": 3, "conv2": 3, "conv3": 2], dense: "dense5",
              heads: [("dense6_2", "box", false), ("dense6_3", "landmarks", false), ("dense6_1", "probability", true)], inputSize: 48),
    ]

    static func stage(_ b: GraphBuilder) throws -> Stage {
        guard b.has("conv1.weight"), b.has("prelu1.weight") else {
            throw RecognitionFailure("no 'conv1.weight' with 'prelu1.weight' (facenet-pytorch MTCNN layout)")
        }
        if b.has("dense6_3.weight") { return stages[2] }
        if b.has("dense5_1.weight") { return stages[1] }
        if b.has("conv4_1.weight") { return stages[0] }
        throw RecognitionFailure("MTCNN-style conv1/prelu1 but none of the heads 'conv4_1' (PNet), 'dense5_1' (RNet), 'dense6_3' (ONet)")
    }

    /// PReLU with the per-channel slope `prefix.weight` [C]: reshaped to [C, 1, 1] over NCHW.
    static func prelu(_ b: GraphBuilder, _ prefix: String, _ x: String, channels: Int, spatial: Bool) throws -> String {
        let w = try b.require(prefix + ".weight", rank: 1)
        guard w == [channels] else { throw RecognitionFailure("PReLU '\(prefix).weight' \(w) does not match \(channels) channels") }
        var slope = prefix + ".weight"
        if spatial { slope = b.add(prefix + ".slope", .reshape, [slope], ["shape": .ints([channels, 1, 1])]) }
        return b.add(prefix, .prelu, [x, slope])
    }

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let s = try stage(b)
        var x = "input", c = 3
        var size = s.inputSize
        for conv in s.convs {
            let w = try b.require(conv + ".weight", rank: 4)
            (x, c) = try b.conv(conv, x, inChannels: c, pad: 0)
            x = try prelu(b, conv.replacingOccurrences(of: "conv", with: "prelu"), x, channels: c, spatial: true)
            size = size.map { $0 - w[2] + 1 }
            if let k = s.pools[conv] {
                x = b.add(conv.replacingOccurrences(of: "conv", with: "pool"), .maxPool2d, [x], [
                    "kernel": .ints([k, k]), "strides": .ints([2, 2]), "pads": .ints([0, 0, 0, 0]), "ceilMode": .int(1),
                ])
                // PyTorch's ceil mode: ⌈(i − k) / 2⌉ + 1 (the last window starts inside the input).
                size = size.map { ($0 - k + 1) / 2 + 1 }
            }
        }
        var features = c
        if let dense = s.dense {
            guard let sp = size, sp > 0 else { throw RecognitionFailure("no spatial size for the dense layer") }
            // facenet-pytorch: x.permute(0, 3, 2, 1).contiguous().view(N, -1).
            x = b.add(dense + ".permute", .transpose, [x], ["perm": .ints([0, 3, 2, 1])])
            x = b.add(dense + ".flatten", .flatten, [x], ["axis": .int(1)])
            (x, features) = try b.linear(dense, x, inFeatures: c * sp * sp)
            x = try prelu(b, dense.replacingOccurrences(of: "dense", with: "prelu"), x, channels: features, spatial: false)
        }
        var outputs: [String] = []
        var widths: [Int] = []
        for h in s.heads {
            var y: String, n: Int
            if s.dense == nil {
                (y, n) = try b.conv(h.module, x, inChannels: features, pad: 0)
                guard try b.require(h.module + ".weight")[2] == 1 else { throw RecognitionFailure("PNet head '\(h.module)' is not a 1×1 conv") }
            } else {
                (y, n) = try b.linear(h.module, x, inFeatures: features)
            }
            if h.softmax {
                guard n == 2 else { throw RecognitionFailure("'\(h.module)' gives \(n) classes, MTCNN's face/not-face head has 2") }
                y = b.add(h.module.replacingOccurrences(of: "conv", with: "softmax").replacingOccurrences(of: "dense", with: "softmax"),
                          .softmax, [y], ["axis": .int(1)], output: h.output)
            } else {
                y = b.add(h.module + ".out", .identity, [y], output: h.output)
            }
            outputs.append(y)
            widths.append(n)
        }
        b.evidence.append("facenet-pytorch MTCNN \(s.name.uppercased().prefix(1))Net layout: \(s.convs.joined(separator: ", ")) with PReLU\(s.dense.map { ", \($0)" } ?? ""), heads \(zip(s.heads, widths).map { "\($0.0.module) (\($0.1))" }.joined(separator: ", "))")
        b.evidence.append("ceil-mode max pools as facenet-pytorch's \(s.name) module has them\(s.dense == nil ? "" : "; permute(0, 3, 2, 1) before the dense layer")")
        let side = s.inputSize
        let input = ValueInfo(name: "input", dtype: .f32, shape: [nil, 3, side, side])
        // facenet-pytorch feeds (pixel − 127.5) / 128 in RGB.
        let pre = Preprocessing(inputSize: [side ?? 12, side ?? 12], resizeShorter: nil, mean: [0.5, 0.5, 0.5],
                                std: [128.0 / 255, 128.0 / 255, 128.0 / 255], interpolation: "bilinear")
        return try b.finish(inputs: [input], outputs: outputs, family: name, variant: "mtcnn_" + s.name, preprocessing: pre,
                            outputShapeHint: s.dense == nil ? Dictionary(uniqueKeysWithValues: zip(outputs, widths).map { ($0.0, [nil, $0.1, nil, nil]) }) : [:])
    }
}
