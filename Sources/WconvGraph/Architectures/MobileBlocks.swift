import WconvTensor

/// Pieces shared by the torchvision mobile families (EfficientNet, MobileNetV2, MobileNetV3).
extension GraphBuilder {
    /// torchvision's Conv2dNormActivation: conv at `prefix.0`, BatchNorm at `prefix.1`, activation
    /// module `prefix.2` (absent when `act` is nil).
    func convNormAct(_ prefix: String, _ x: String, inChannels: Int, stride: Int = 1, act: Op?, eps: Double, momentum: Double = 0.1) throws -> (String, Int) {
        var (y, c) = try conv(prefix + ".0", x, inChannels: inChannels, stride: stride)
        y = try bn(prefix + ".1", y, channels: c, eps: eps, momentum: momentum)
        if let act { y = self.act(act, prefix + ".2", y) }
        return (y, c)
    }

    /// True when `prefix.0.weight` is a 4-D conv and `prefix.1` a BatchNorm (a Conv2dNormActivation).
    func isConvNormAct(_ prefix: String) -> Bool {
        shape(prefix + ".0.weight")?.count == 4 && has(prefix + ".1.running_mean")
    }

    /// An inverted-residual body over the children of `prefix` (a Sequential): Conv2dNormActivation
    /// children get `act` except the last (the linear projection); a child with `fc1` is
    /// squeeze-excitation; a bare conv followed by a bare BatchNorm (MobileNetV2's projection) is the
    /// projection. The stride goes to the depthwise conv (groups == channels).
    /// Returns the output, its channels, and a short description for evidence.
    func invertedResidualBody(_ prefix: String, _ x: String, inChannels: Int, stride: Int, act: Op,
                              seAct: Op, seGate: Op, eps: Double, momentum: Double = 0.1) throws -> (String, Int, String) {
        let kids = children(prefix)
        guard !kids.isEmpty else { throw RecognitionFailure("'\(prefix)' has no children") }
        var y = x, c = inChannels
        var parts: [String] = []
        var i = 0
        let lastCNA = kids.last(where: { isConvNormAct("\(prefix).\($0)") })
        while i < kids.count {
            let k = kids[i]
            let p = "\(prefix).\(k)"
            if isConvNormAct(p) {
                let w = try require(p + ".0.weight", rank: 4)
                let depthwise = w[1] == 1 && w[0] == c && c > 1
                let isProjection = k == lastCNA && !depthwise
                (y, c) = try convNormAct(p, y, inChannels: c, stride: depthwise ? stride : 1,
                                         act: isProjection ? nil : act, eps: eps, momentum: momentum)
                parts.append(depthwise ? "dw\(w[2])x\(w[3])" : (isProjection ? "project" : "expand"))
            } else if has(p + ".fc1.weight") {
                y = try squeezeExcite(p, y, channels: c, act: seAct, gate: seGate)
                parts.append("se")
            } else if shape(p + ".weight")?.count == 4 {
                // MobileNetV2 projection: bare conv then bare BatchNorm at the next index.
                (y, c) = try conv(p, y, inChannels: c)
                guard i + 1 < kids.count, has("\(prefix).\(kids[i + 1]).running_mean") else {
                    throw RecognitionFailure("'\(p)' conv is not followed by a BatchNorm")
                }
                y = try bn("\(prefix).\(kids[i + 1])", y, channels: c, eps: eps, momentum: momentum)
                parts.append("project")
                i += 1
            } else {
                throw RecognitionFailure("'\(p)' is neither a conv-norm-activation, a squeeze-excitation nor a conv")
            }
            i += 1
        }
        guard parts.contains(where: { $0.hasPrefix("dw") }) else {
            throw RecognitionFailure("'\(prefix)' has no depthwise conv (not an inverted residual block)")
        }
        return (y, c, parts.joined(separator: "-"))
    }
}
