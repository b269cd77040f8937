import OrderedCollections
import WconvGraph
import WconvTensor

/// Networks built op by op with random weights, for benchmarks and tests that need a real-sized
/// model without a file (`wconv bench train --synthetic resnet18`).
public enum SyntheticModels {
    /// A torchvision-named ResNet-18 (base width `w`, 64 as torchvision), random kaiming weights
    /// and BN statistics, ImageNet-style preprocessing at `input`×`input`.
    public static func resnet18(width w: Int = 64, classes: Int = 1000, input: Int = 224, seed: UInt64 = 1) -> ModelGraph {
        resnet(blocks: [2, 2, 2, 2], widths: (0..<4).map { w << $0 }, classes: classes, input: input, seed: seed)
    }

    /// A torchvision-layout BasicBlock ResNet with `blocks[i]` blocks of width `widths[i]` per stage
    /// (torchvision's stem: 7×7/2 conv, BN, ReLU, 3×3/2 max pool).
    public static func resnet(blocks: [Int], widths: [Int], classes: Int, input: Int, seed: UInt64 = 1) -> ModelGraph {
        let w = widths[0]
    var rng = RNG(seed: seed)
    var p = OrderedDictionary<String, Tensor>()
    var buffers = Set<String>()
    var nodes: [GraphNode] = []
    var counter = 0
    func value() -> String { counter += 1; return "v\(counter)" }
    func conv(_ name: String, _ x: String, _ cin: Int, _ cout: Int, k: Int, s: Int) -> String {
        let fan = cin * k * k, bound = (6.0 / Double(fan)).squareRoot()
        p[name + ".weight"] = Tensor(shape: [cout, cin, k, k], floats: (0..<(cout * fan)).map { _ in Float(rng.uniform(-bound, bound)) })
        let out = value()
        nodes.append(GraphNode(name: name, op: .conv2d, inputs: [x, name + ".weight", ""], outputs: [out],
                               attributes: ["strides": .ints([s, s]), "pads": .ints([k / 2, k / 2, k / 2, k / 2]), "dilations": .ints([1, 1]), "group": .int(1)]))
        return out
    }
    func bn(_ name: String, _ x: String, _ c: Int) -> String {
        p[name + ".weight"] = Tensor(shape: [c], floats: (0..<c).map { _ in Float(rng.uniform(0.5, 1.5)) })
        p[name + ".bias"] = Tensor(shape: [c], floats: (0..<c).map { _ in Float(rng.uniform(-0.1, 0.1)) })
        p[name + ".running_mean"] = Tensor(shape: [c], floats: (0..<c).map { _ in Float(rng.uniform(-0.1, 0.1)) })
        p[name + ".running_var"] = Tensor(shape: [c], floats: (0..<c).map { _ in Float(rng.uniform(0.5, 1.5)) })
        buffers.formUnion([name + ".running_mean", name + ".running_var"])
        let out = value()
        nodes.append(GraphNode(name: name, op: .batchNorm, inputs: [x, name + ".weight", name + ".bias", name + ".running_mean", name + ".running_var"],
                               outputs: [out], attributes: ["epsilon": .float(1e-5), "momentum": .float(0.1)]))
        return out
    }
    func relu(_ x: String) -> String { let o = value(); nodes.append(GraphNode(name: "relu_\(o)", op: .relu, inputs: [x], outputs: [o])); return o }
    var x = relu(bn("bn1", conv("conv1", "input", 3, w, k: 7, s: 2), w))
    let mp = value()
    nodes.append(GraphNode(name: "maxpool", op: .maxPool2d, inputs: [x], outputs: [mp], attributes: ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "dilations": .ints([1, 1]), "ceilMode": .int(0)]))
    x = mp
    var cin = w
    for stage in 1...blocks.count {
        let cout = widths[stage - 1]
        for block in 0..<blocks[stage - 1] {
            let s = (stage > 1 && block == 0) ? 2 : 1
            let pre = "layer\(stage).\(block)"
            var y = relu(bn(pre + ".bn1", conv(pre + ".conv1", x, cin, cout, k: 3, s: s), cout))
            y = bn(pre + ".bn2", conv(pre + ".conv2", y, cout, cout, k: 3, s: 1), cout)
            var shortcut = x
            if s != 1 || cin != cout { shortcut = bn(pre + ".downsample.1", conv(pre + ".downsample.0", x, cin, cout, k: 1, s: s), cout) }
            let sum = value()
            nodes.append(GraphNode(name: pre + ".add", op: .add, inputs: [y, shortcut], outputs: [sum]))
            x = relu(sum)
            cin = cout
        }
    }
    let gap = value()
    nodes.append(GraphNode(name: "avgpool", op: .globalAvgPool, inputs: [x], outputs: [gap], attributes: ["keepdims": .int(0)]))
    let bound = 1 / Double(cin).squareRoot()
    p["fc.weight"] = Tensor(shape: [classes, cin], floats: (0..<(classes * cin)).map { _ in Float(rng.uniform(-bound, bound)) })
    p["fc.bias"] = Tensor(shape: [classes], floats: (0..<classes).map { _ in Float(rng.uniform(-bound, bound)) })
    nodes.append(GraphNode(name: "fc", op: .linear, inputs: [gap, "fc.weight", "fc.bias"], outputs: ["logits"]))
    return ModelGraph(nodes: nodes, inputs: [ValueInfo(name: "input", shape: [nil, 3, input, input])], outputs: [ValueInfo(name: "logits", shape: [nil, classes])],
                      parameters: p, buffers: buffers, architecture: "resnet", variant: "resnet18",
                      preprocessing: Preprocessing(inputSize: [input, input], resizeShorter: input + input / 7))
}
}
