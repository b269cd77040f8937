import WconvGraph
import WconvTensor

/// The sequence-classification head transformers puts on a BERT-family encoder, as a graph
/// transform. BertForSequenceClassification: dropout + `classifier` Linear on the pooler output
/// (a pooler is added when the encoder has none); DistilBertForSequenceClassification: token 0 →
/// `pre_classifier` Linear → ReLU → dropout → `classifier`. New layers are initialised as
/// transformers' `_init_weights` does (weight normal(0, initializer_range), bias 0) from the seeded
/// RNG; an existing `classifier` is re-initialised for the data's classes (an existing pooler or
/// pre_classifier keeps its trained weights, as `from_pretrained(…, num_labels=N)` keeps them).
public enum TextHead {
    /// `keep`: train the model's own classifier (`--head keep`); it must predict `classes.count` classes.
    public static func attach(_ model: TextTrainingModel, classes: [String], seed: UInt64, keep: Bool = false) throws -> ModelGraph {
        var g = model.graph
        let n = classes.count
        guard n >= 2 else { throw WconvError.invalid("a classifier needs at least two classes, got \(n)") }
        if keep {
            guard let w = g.parameters["classifier.weight"], g.outputs.first?.name == "logits" else {
                throw WconvError.invalid("--head keep: the model has no classifier to keep; use --head new to add transformers' sequence-classification head")
            }
            guard w.shape.first == n else {
                throw WconvError.invalid("the model's head predicts \(w.shape.first ?? 0) classes but the data has \(n); use --head new to replace the head for \(n) classes")
            }
            setDropout(&g, model.classifierDropout)
            g.labels = classes
            return g
        }
        let d = model.hidden
        let std = model.config?["initializer_range"]?.double ?? 0.02
        var rng = RNG(seed: seed, keys: 0x7E47, 0)
        func linear(_ prefix: String, out: Int, input: Int) {
            g.parameters[prefix + ".weight"] = Tensor(shape: [out, input], floats: (0..<(out * input)).map { _ in Float(rng.normal() * std) })
            g.parameters[prefix + ".bias"] = Tensor(shape: [out], floats: [Float](repeating: 0, count: out))
        }
        func node(_ name: String, _ op: Op, _ inputs: [String], _ attrs: [String: AttributeValue] = [:], output: String? = nil) -> String {
            let out = output ?? name
            g.nodes.append(GraphNode(name: name, op: op, inputs: inputs, outputs: [out], attributes: attrs))
            return out
        }
        func tokenZero(_ name: String, _ x: String) -> String {
            let s = node(name + ".slice", .slice, [x], ["starts": .ints([0]), "ends": .ints([1]), "axes": .ints([1])])
            return node(name + ".squeeze", .flatten, [s], ["axis": .int(1)])
        }
        let dropout: [String: AttributeValue] = ["ratio": .float(model.classifierDropout)]
        if g.parameters["classifier.weight"] != nil, g.nodes.contains(where: { $0.name == "classifier" }) {
            // The task model's head: new classifier weights, the config's dropout.
            linear("classifier", out: n, input: g.parameters["classifier.weight"]!.shape[1])
            setDropout(&g, model.classifierDropout)
        } else {
            guard let hidden = g.outputs.first(where: { $0.name == "last_hidden_state" })?.name else {
                throw WconvError.invalid("the encoder graph has no last_hidden_state to put a classifier on")
            }
            let features: String
            switch model.family {
            case .bert:
                let p = model.basePrefix + "pooler"
                if g.outputs.contains(where: { $0.name == "pooler_output" }) {
                    features = "pooler_output"
                } else {
                    linear(p + ".dense", out: d, input: d)
                    let x = node(p + ".dense", .linear, [tokenZero(p, hidden), p + ".dense.weight", p + ".dense.bias"])
                    features = node(p + ".activation", .tanh, [x], output: "pooler_output")
                }
            case .distilbert:
                linear("pre_classifier", out: d, input: d)
                let x = node("pre_classifier", .linear, [tokenZero("pre_classifier", hidden), "pre_classifier.weight", "pre_classifier.bias"])
                features = node("pre_classifier.relu", .relu, [x])
            }
            let dropped = node("dropout", .dropout, [features], dropout)
            linear("classifier", out: n, input: d)
            _ = node("classifier", .linear, [dropped, "classifier.weight", "classifier.bias"], output: "logits")
        }
        g.outputs = [ValueInfo(name: "logits", dtype: .f32, shape: [nil, n])]
        g.labels = classes
        return g
    }

    /// The classifier's dropout as the model's config says (the importer assumes transformers' defaults).
    static func setDropout(_ g: inout ModelGraph, _ ratio: Double) {
        for i in g.nodes.indices where g.nodes[i].name == "dropout" && g.nodes[i].op == .dropout { g.nodes[i].attributes["ratio"] = .float(ratio) }
    }
}
