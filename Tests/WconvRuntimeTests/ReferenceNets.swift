import OrderedCollections
import WconvGraph
import WconvTensor
@testable import WconvRuntime

/// Builds torchvision-shaped networks with random weights (He-scaled) and random BN statistics,
/// for executor tests and the RUN_BENCHMARKS timing (the real import path comes from WconvGraph).
struct NetBuilder {
    var g = ModelGraph()
    var rng = TestRNG(42)
    var counter = 0

    init(inputShape: [Int?]) {
        g.inputs = [ValueInfo(name: "x", shape: inputShape)]
    }

    mutating func param(_ name: String, _ shape: [Int], scale: Float) {
        g.parameters[name] = rng.tensor(shape, scale: scale)
    }

    mutating func node(_ op: Op, _ inputs: [String], _ name: String, attrs: [String: AttributeValue] = [:]) -> String {
        g.nodes.append(GraphNode(name: name, op: op, inputs: inputs, outputs: [name + ":out"], attributes: attrs))
        return name + ":out"
    }

    mutating func conv(_ x: String, _ name: String, cin: Int, cout: Int, k: Int, stride: Int = 1, groups: Int = 1, bias: Bool = false) -> String {
        let fan = Float(cin / groups * k * k)
        param(name + ".weight", [cout, cin / groups, k, k], scale: (3 / fan).squareRoot())
        if bias { param(name + ".bias", [cout], scale: 0.1) }
        let p = (k - 1) / 2
        return node(.conv2d, [x, name + ".weight", bias ? name + ".bias" : ""], name,
                    attrs: ["strides": .ints([stride, stride]), "pads": .ints([p, p, p, p]), "group": .int(groups)])
    }

    mutating func bn(_ x: String, _ name: String, c: Int) -> String {
        g.parameters[name + ".weight"] = rng.positive([c])
        param(name + ".bias", [c], scale: 0.1)
        param(name + ".running_mean", [c], scale: 0.1)
        g.parameters[name + ".running_var"] = rng.positive([c])
        g.buffers.formUnion([name + ".running_mean", name + ".running_var"])
        return node(.batchNorm, [x, name + ".weight", name + ".bias", name + ".running_mean", name + ".running_var"], name,
                    attrs: ["epsilon": .float(1e-5), "momentum": .float(0.1)])
    }

    /// torchvision's SqueezeExcitation: x · sigmoid(fc2(silu(fc1(avgpool(x))))).
    mutating func squeezeExcite(_ x: String, _ p: String, c: Int, squeezed: Int) -> String {
        var se = node(.globalAvgPool, [x], p + ".avgpool", attrs: ["keepdims": .int(1)])
        se = conv(se, p + ".fc1", cin: c, cout: squeezed, k: 1, bias: true)
        se = node(.silu, [se], p + ".act")
        se = conv(se, p + ".fc2", cin: squeezed, cout: c, k: 1, bias: true)
        se = node(.sigmoid, [se], p + ".scale_act")
        return node(.mul, [x, se], p + ".mul")
    }

    mutating func finish(_ y: String) -> ModelGraph {
        g.outputs = [ValueInfo(name: y, shape: [])]
        return g
    }

    /// torchvision resnet50 (bottleneck, [3,4,6,3]); `width` scales the channels for small tests.
    static func resnet(blocks: [Int] = [3, 4, 6, 3], width: Int = 64, classes: Int = 1000, bottleneck: Bool = true) -> ModelGraph {
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        var x = b.conv("x", "conv1", cin: 3, cout: width, k: 7, stride: 2)
        x = b.bn(x, "bn1", c: width)
        x = b.node(.relu, [x], "relu")
        x = b.node(.maxPool2d, [x], "maxpool", attrs: ["kernel": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        var cin = width
        let expansion = bottleneck ? 4 : 1
        for (li, n) in blocks.enumerated() {
            let planes = width << li
            for bi in 0..<n {
                let stride = (bi == 0 && li > 0) ? 2 : 1
                let p = "layer\(li + 1).\(bi)"
                var h: String
                if bottleneck {
                    h = b.conv(x, p + ".conv1", cin: cin, cout: planes, k: 1)
                    h = b.node(.relu, [b.bn(h, p + ".bn1", c: planes)], p + ".relu1")
                    h = b.conv(h, p + ".conv2", cin: planes, cout: planes, k: 3, stride: stride)
                    h = b.node(.relu, [b.bn(h, p + ".bn2", c: planes)], p + ".relu2")
                    h = b.conv(h, p + ".conv3", cin: planes, cout: planes * 4, k: 1)
                    h = b.bn(h, p + ".bn3", c: planes * 4)
                } else {
                    h = b.conv(x, p + ".conv1", cin: cin, cout: planes, k: 3, stride: stride)
                    h = b.node(.relu, [b.bn(h, p + ".bn1", c: planes)], p + ".relu1")
                    h = b.conv(h, p + ".conv2", cin: planes, cout: planes, k: 3)
                    h = b.bn(h, p + ".bn2", c: planes)
                }
                var sc = x
                if stride != 1 || cin != planes * expansion {
                    sc = b.conv(x, p + ".downsample.0", cin: cin, cout: planes * expansion, k: 1, stride: stride)
                    sc = b.bn(sc, p + ".downsample.1", c: planes * expansion)
                }
                x = b.node(.relu, [b.node(.add, [h, sc], p + ".add")], p + ".relu3")
                cin = planes * expansion
            }
        }
        x = b.node(.adaptiveAvgPool2d, [x], "avgpool", attrs: ["outputSize": .ints([1, 1])])
        x = b.node(.flatten, [x], "flatten", attrs: ["axis": .int(1)])
        b.param("fc.weight", [classes, cin], scale: (1 / Float(cin)).squareRoot())
        b.param("fc.bias", [classes], scale: 0.01)
        x = b.node(.linear, [x, "fc.weight", "fc.bias"], "fc")
        return b.finish(x)
    }

    /// torchvision efficientnet_b0 layout (MBConv with SE, SiLU); `scale` divides channels for tests.
    static func efficientnetB0(classes: Int = 1000, div: Int = 1) -> ModelGraph {
        var b = NetBuilder(inputShape: [nil, 3, nil, nil])
        func ch(_ c: Int) -> Int { max(4, c / div) }
        var x = b.conv("x", "features.0.0", cin: 3, cout: ch(32), k: 3, stride: 2)
        x = b.node(.silu, [b.bn(x, "features.0.1", c: ch(32))], "features.0.2")
        // (expand, kernel, stride, out, repeats)
        let cfg = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
        var cin = ch(32)
        for (si, (e, k, s, cout, reps)) in cfg.enumerated() {
            for r in 0..<reps {
                let p = "features.\(si + 1).\(r).block"
                let stride = r == 0 ? s : 1
                let hid = cin * e
                var h = x
                var li = 0
                if e != 1 {
                    h = b.conv(h, p + ".\(li).0", cin: cin, cout: hid, k: 1)
                    h = b.node(.silu, [b.bn(h, p + ".\(li).1", c: hid)], p + ".\(li).2"); li += 1
                }
                h = b.conv(h, p + ".\(li).0", cin: hid, cout: hid, k: k, stride: stride, groups: hid)
                h = b.node(.silu, [b.bn(h, p + ".\(li).1", c: hid)], p + ".\(li).2"); li += 1
                h = b.squeezeExcite(h, p + ".\(li)", c: hid, squeezed: max(1, cin / 4)); li += 1
                h = b.conv(h, p + ".\(li).0", cin: hid, cout: ch(cout), k: 1)
                h = b.bn(h, p + ".\(li).1", c: ch(cout))
                if stride == 1 && cin == ch(cout) { h = b.node(.add, [h, x], p + ".add") }
                x = h
                cin = ch(cout)
            }
        }
        x = b.conv(x, "features.8.0", cin: cin, cout: ch(1280), k: 1)
        x = b.node(.silu, [b.bn(x, "features.8.1", c: ch(1280))], "features.8.2")
        x = b.node(.globalAvgPool, [x], "avgpool", attrs: ["keepdims": .int(0)])
        x = b.node(.dropout, [x], "classifier.0", attrs: ["ratio": .float(0.2)])
        b.param("classifier.1.weight", [classes, ch(1280)], scale: (1 / Float(ch(1280))).squareRoot())
        b.param("classifier.1.bias", [classes], scale: 0.01)
        x = b.node(.linear, [x, "classifier.1.weight", "classifier.1.bias"], "classifier.1")
        return b.finish(x)
    }
}
