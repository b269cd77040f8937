import WconvFormats
import WconvTensor

/// ONNX ops whose output *shape* depends on input *values* (Expand, Tile, ConstantOfShape, Range).
/// When those inputs are constants they become attributes, so shape inference (which sees shapes,
/// not values) can fix the output shape once; otherwise the node keeps the input and shape
/// inference reports that the value is computed at run time.
extension ONNXBuildContext {
    mutating func mapValueShaped(_ n: ONNXNode) {
        let out1 = n.outputs.isEmpty ? [] : [n.outputs[0]]
        switch n.opType {
        case "Expand", "Tile":
            let key = n.opType == "Expand" ? "shape" : "repeats"
            let op: Op = n.opType == "Expand" ? .expand : .tile
            if let t = constant(n, 1) {
                emit(n, op, inputs: [n.inputs[0]], outputs: out1, [key: .ints(ints(t))])
            } else {
                emit(n, op, outputs: out1)
            }
        case "ConstantOfShape":
            let value = n.tensor("value")
            var attrs: [String: AttributeValue] = ["value": .float(value?.doubles().first ?? 0),
                                                   "dtype": .string((value?.dtype ?? .f32).rawValue)]
            if let t = constant(n, 0) {
                attrs["shape"] = .ints(ints(t))
                emit(n, .constantOfShape, inputs: [], outputs: out1, attrs)
            } else {
                emit(n, .constantOfShape, outputs: out1, attrs)
            }
        case "Range":
            if let s = constant(n, 0)?.doubles().first, let l = constant(n, 1)?.doubles().first,
               let d = constant(n, 2)?.doubles().first {
                emit(n, .range, inputs: [], outputs: out1, ["start": .float(s), "limit": .float(l), "delta": .float(d)])
            } else {
                emit(n, .range, outputs: out1)
            }
        default:
            unsupported.append(unsupportedNode(n))
        }
    }
}
