import WconvFormats
import WconvTensor

/// Settings of a BERT-style encoder, from config.json when present, else inferred.
struct EncoderSettings {
    var heads: Int
    var eps: Double
    var act: Op
    var actAttrs: [String: AttributeValue]
    /// Dropout on the hidden states in training (BERT `hidden_dropout_prob`, DistilBERT `dropout`;
    /// transformers' default 0.1): after the embeddings' LayerNorm, after the attention output
    /// projection (BERT only) and after the feed-forward output, as transformers places it.
    /// Identity in eval.
    var hiddenDropout: Double = 0.1
    /// Dropout on the attention probabilities in training (BERT `attention_probs_dropout_prob`,
    /// DistilBERT `attention_dropout`; default 0.1), the attention node's `dropout` attribute.
    var attentionDropout: Double = 0.1
    var notes: [String]

    /// `headsKey`/`epsKey`/`actKey` are the config.json spellings (BERT: num_attention_heads,
    /// layer_norm_eps, hidden_act; DistilBERT: n_heads, —, activation).
    static func resolve(hidden: Int, config: JSONValue?, headsKey: String, epsKey: String?, actKey: String,
                        dropoutKey: String? = nil, attentionDropoutKey: String? = nil) throws -> EncoderSettings {
        var notes: [String] = []
        var heads: Int
        if let h = config?[headsKey]?.int {
            heads = h
            notes.append("\(h) attention heads from config.json \(headsKey)")
        } else {
            guard hidden % 64 == 0 else {
                throw RecognitionFailure("hidden size \(hidden) is not a multiple of 64, so the head count cannot be inferred; put the model's config.json beside the file")
            }
            heads = hidden / 64
            notes.append("no config.json: \(heads) attention heads inferred as hidden \(hidden) / 64 (BERT's head size) — supply config.json if the model differs")
        }
        guard heads >= 1, hidden % heads == 0 else { throw RecognitionFailure("\(heads) heads do not divide hidden size \(hidden)") }
        let eps = epsKey.flatMap { config?[$0]?.double } ?? 1e-12
        let actName = config?[actKey]?.string ?? "gelu"
        var act: Op = .gelu
        var attrs: [String: AttributeValue] = ["approximate": .string("none")]
        switch actName {
        case "gelu": break
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": attrs = ["approximate": .string("tanh")]
        case "relu": act = .relu; attrs = [:]
        case "silu", "swish": act = .silu; attrs = [:]
        default: throw RecognitionFailure("hidden activation '\(actName)' in config.json is not supported")
        }
        notes.append("LayerNorm eps \(eps), activation \(actName)\(config?[actKey] == nil ? " (default)" : " (config.json)")")
        // Graphs that place dropout (BERT, DistilBERT): ratios from config.json, transformers' 0.1 else.
        func ratio(_ key: String?, _ what: String) throws -> Double {
            guard let key else { return 0 }
            let r = config?[key]?.double ?? 0.1
            guard r >= 0, r < 1 else { throw RecognitionFailure("config.json \(key) \(r) is not a probability below 1") }
            notes.append("\(what) dropout \(r) in training\(config?[key] == nil ? " (default)" : " (config.json \(key))")")
            return r
        }
        let dropout = try ratio(dropoutKey, "hidden"), attentionDropout = try ratio(attentionDropoutKey, "attention-probabilities")
        return EncoderSettings(heads: heads, eps: eps, act: act, actAttrs: attrs, hiddenDropout: dropout, attentionDropout: attentionDropout,
                               notes: notes)
    }
}

/// Inputs of HF encoders, all i64 [batch, sequence] as the tokenizer writes them: token ids, the
/// padding mask (1 = token, 0 = padding) and, when the model has token-type embeddings, the segment ids.
enum EncoderInputs {
    static let inputIDs = ValueInfo(name: "input_ids", dtype: .i64, shape: [nil, nil])
    static let attentionMask = ValueInfo(name: "attention_mask", dtype: .i64, shape: [nil, nil])
    static let tokenTypeIDs = ValueInfo(name: "token_type_ids", dtype: .i64, shape: [nil, nil])
}

extension GraphBuilder {
    /// Embedding sum of HF encoders: word + token type (input `token_type_ids`, when the model has
    /// token-type embeddings) + absolute position (0 ..< T), then LayerNorm. Returns the value, the
    /// hidden size and the graph inputs it reads. The word embedding's padding row gets no gradient,
    /// as transformers builds it (`padding_idx` = config.json pad_token_id, default 0).
    func encoderEmbeddings(_ p: String, eps: Double, dropout: Double, config: JSONValue?) throws -> (String, Int, [ValueInfo]) {
        let we = try require("\(p).word_embeddings.weight", rank: 2)
        let dim = we[1]
        var inputs = [EncoderInputs.inputIDs, EncoderInputs.attentionMask]
        // Absent: transformers' default 0; null: no padding row.
        let pad: Int? = config?["pad_token_id"].map { $0.int } ?? 0
        let padAttrs: [String: AttributeValue] = pad.map { $0 >= 0 && $0 < we[0] ? ["paddingIdx": .int($0)] : [:] } ?? [:]
        var x = add("\(p).word_embeddings", .embedding, ["input_ids", "\(p).word_embeddings.weight"], padAttrs)
        if let tt = shape("\(p).token_type_embeddings.weight") {
            guard tt.count == 2, tt[1] == dim else { throw RecognitionFailure("token_type_embeddings \(tt) does not match hidden size \(dim)") }
            let e = add("\(p).token_type_embeddings", .embedding, [EncoderInputs.tokenTypeIDs.name, "\(p).token_type_embeddings.weight"])
            x = add("\(p).add_token_type", .add, [x, e])
            inputs.append(EncoderInputs.tokenTypeIDs)
        }
        let pe = try require("\(p).position_embeddings.weight", rank: 2)
        guard pe[1] == dim else { throw RecognitionFailure("position_embeddings \(pe) does not match hidden size \(dim)") }
        let pos = add("\(p).position_ids", .arange, ["input_ids"], ["axis": .int(1), "start": .int(0), "step": .int(1)])
        let e = add("\(p).position_embeddings", .embedding, [pos, "\(p).position_embeddings.weight"])
        x = add("\(p).add_position", .add, [x, e])
        for buf in ["\(p).position_ids", "\(p).token_type_ids"] where has(buf) {
            unusedReasons[buf] = "HF id buffer: position ids are computed in the graph (arange), token types are the token_type_ids input"
        }
        return (hiddenDropout("\(p).dropout", try layerNorm("\(p).LayerNorm", x, dim: dim, eps: eps), dropout), dim, inputs)
    }

    /// A dropout node (training only) unless the ratio is 0.
    func hiddenDropout(_ name: String, _ x: String, _ ratio: Double) -> String {
        ratio > 0 ? add(name, .dropout, [x], ["ratio": .float(ratio)]) : x
    }

    /// The additive attention mask from the `attention_mask` input, as HF builds it:
    /// (1 − mask) · finfo(f32).min, shaped [B, 1, 1, T] so it broadcasts over heads and query rows.
    func extendedAttentionMask(_ name: String) -> String {
        let m = add(name + ".cast", .cast, [EncoderInputs.attentionMask.name], ["to": .string(DType.f32.rawValue)])
        let one = add(name + ".one", .constantOfShape, [], ["shape": .ints([1]), "value": .float(1), "dtype": .string(DType.f32.rawValue)])
        let lowest = add(name + ".lowest", .constantOfShape, [], ["shape": .ints([1]), "value": .float(-Double(Float.greatestFiniteMagnitude)),
                                                                  "dtype": .string(DType.f32.rawValue)])
        let inverted = add(name + ".invert", .sub, [one, m])
        let additive = add(name + ".scale", .mul, [inverted, lowest])
        return add(name, .unsqueeze, [additive], ["axes": .ints([1, 2])])
    }

    /// One post-norm transformer layer: attention (q, k, v, out projections) + residual + LN,
    /// feed-forward (in, act, out) + residual + LN.
    func encoderLayer(q: String, k: String, v: String, o: String, ln1: String, ff1: String, ff2: String, ln2: String,
                      x: String, mask: String, dim: Int, s: EncoderSettings, attentionOutputDropout: Bool = true,
                      output: String? = nil) throws -> String {
        let (qv, _) = try linear(q, x, inFeatures: dim)
        let (kv, _) = try linear(k, x, inFeatures: dim)
        let (vv, _) = try linear(v, x, inFeatures: dim)
        // Node named after the projections' parent module (`…attention.self`, `…attention`).
        let ctxName = q.split(separator: ".").dropLast().joined(separator: ".")
        var attrs: [String: AttributeValue] = ["heads": .int(s.heads), "scale": .float(1.0 / Double(dim / s.heads).squareRoot())]
        if s.attentionDropout > 0 { attrs["dropout"] = .float(s.attentionDropout) }
        let ctx = add(ctxName + ".attention", .attention, [qv, kv, vv, mask], attrs)
        var (a, ad) = try linear(o, ctx, inFeatures: dim)
        guard ad == dim else { throw RecognitionFailure("'\(o)' projects to \(ad), not the hidden size \(dim)") }
        if attentionOutputDropout { a = hiddenDropout(o + ".dropout", a, s.hiddenDropout) }
        a = add(o + ".residual", .add, [a, x])
        let h1 = try layerNorm(ln1, a, dim: dim, eps: s.eps)
        var (f, fd) = try linear(ff1, h1, inFeatures: dim)
        f = add(ff1 + ".act", s.act, [f], s.actAttrs)
        (f, fd) = try linear(ff2, f, inFeatures: fd)
        guard fd == dim else { throw RecognitionFailure("'\(ff2)' projects to \(fd), not the hidden size \(dim)") }
        f = hiddenDropout(ff2 + ".dropout", f, s.hiddenDropout)
        f = add(ff2 + ".residual", .add, [f, h1])
        return try layerNorm(ln2, f, dim: dim, eps: s.eps, output: output)
    }

    /// Row 0 of the sequence (the [CLS] token): [B, T, D] → [B, D].
    func firstToken(_ name: String, _ x: String) -> String {
        let s = add(name + ".slice", .slice, [x], ["starts": .ints([0]), "ends": .ints([1]), "axes": .ints([1])])
        return add(name + ".squeeze", .flatten, [s], ["axis": .int(1)])
    }

    /// Strips an HF task-model base prefix (`bert.`, `distilbert.`) for matching; returns it.
    func basePrefix(_ candidates: [String], probe: String) -> String? {
        if has(probe) { return "" }
        return candidates.first { has($0 + probe) }
    }
}

/// HF BERT family (BERT, MiniLM, and other models with BERT's module names):
/// `embeddings.{word,position,token_type}_embeddings`, `embeddings.LayerNorm`,
/// `encoder.layer.N.attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`,
/// `intermediate.dense`, `output.{dense,LayerNorm}`, optional `pooler.dense`, optional task head
/// `classifier` (BertForSequenceClassification, keys under `bert.`). Old TF-ported files name
/// LayerNorm parameters gamma/beta; they are renamed to weight/bias as transformers does.
/// RoBERTa (`roberta.` keys) is deliberately not matched: its positions start at padding_idx + 1,
/// which this graph's arange-from-0 positions would get silently wrong.
enum BERTFamily: ArchitectureFamily {
    static let name = "bert"

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        let n = b.rename(rule: "LayerNorm gamma/beta → weight/bias (TF-era BERT names, as transformers renames them)") { k in
            guard k.contains("LayerNorm.") else { return nil }
            if k.hasSuffix(".gamma") { return String(k.dropLast(6)) + ".weight" }
            if k.hasSuffix(".beta") { return String(k.dropLast(5)) + ".bias" }
            return nil
        }
        guard let base = b.basePrefix(["bert.", "model.bert."], probe: "embeddings.word_embeddings.weight") else {
            throw RecognitionFailure("no 'embeddings.word_embeddings.weight' (HF BERT naming)")
        }
        guard b.has(base + "encoder.layer.0.attention.self.query.weight") else {
            throw RecognitionFailure("no '\(base)encoder.layer.0.attention.self.query.weight' (BERT encoder layer naming)")
        }
        let dim = try b.require(base + "embeddings.word_embeddings.weight", rank: 2)[1]
        if let t = config?["model_type"]?.string, t != "bert" {
            throw RecognitionFailure("config.json says model_type '\(t)', not 'bert' (its embeddings or layers differ)")
        }
        if config == nil, b.shape(base + "embeddings.token_type_embeddings.weight")?.first == 1,
           let p = b.shape(base + "embeddings.position_embeddings.weight")?.first, p == 514 || p == 258 {
            throw RecognitionFailure("one token type and \(p) positions look like RoBERTa (positions offset by 2); put its config.json beside the file")
        }
        let s = try EncoderSettings.resolve(hidden: dim, config: config, headsKey: "num_attention_heads", epsKey: "layer_norm_eps", actKey: "hidden_act",
                                          dropoutKey: "hidden_dropout_prob", attentionDropoutKey: "attention_probs_dropout_prob")
        var (x, _, inputs) = try b.encoderEmbeddings(base + "embeddings", eps: s.eps, dropout: s.hiddenDropout, config: config)
        let mask = b.extendedAttentionMask(base + "extended_attention_mask")
        let layers = b.children(base + "encoder.layer")
        guard layers == Array(0..<layers.count) else { throw RecognitionFailure("encoder layers are not numbered 0..<\(layers.count): \(layers)") }
        let hasPooler = b.has(base + "pooler.dense.weight")
        let hasClassifier = b.has("classifier.weight") && hasPooler
        for l in layers {
            let p = "\(base)encoder.layer.\(l)"
            let isLast = l == layers.count - 1
            x = try b.encoderLayer(q: "\(p).attention.self.query", k: "\(p).attention.self.key", v: "\(p).attention.self.value",
                                   o: "\(p).attention.output.dense", ln1: "\(p).attention.output.LayerNorm",
                                   ff1: "\(p).intermediate.dense", ff2: "\(p).output.dense", ln2: "\(p).output.LayerNorm",
                                   x: x, mask: mask, dim: dim, s: s, output: isLast ? "last_hidden_state" : nil)
        }
        var outputs = [x]
        var hints: [String: [Int?]] = [x: [nil, nil, dim]]
        if hasPooler {
            let first = b.firstToken(base + "pooler", x)
            var (pooled, _) = try b.linear(base + "pooler.dense", first, inFeatures: dim)
            pooled = b.add(base + "pooler.activation", .tanh, [pooled], output: hasClassifier ? nil : "pooler_output")
            if hasClassifier {
                let d = b.add("dropout", .dropout, [pooled], ["ratio": .float(0.1)])
                let (logits, classes) = try b.linear("classifier", d, inFeatures: dim, output: "logits")
                outputs = [logits]
                hints = [logits: [nil, classes]]
                b.evidence.append("sequence-classification head classifier.weight [\(classes), \(dim)] on the pooled [CLS] output")
            } else {
                outputs.append(pooled)
                hints[pooled] = [nil, dim]
            }
        }
        for k in b.tensors.keys where k.hasPrefix("cls.") { b.unusedReasons[k] = "pretraining head (masked-LM / next-sentence) is not part of the encoder graph" }
        b.evidence.append("\(base)embeddings.word_embeddings.weight \(try b.require(base + "embeddings.word_embeddings.weight")): hidden size \(dim); \(layers.count) encoder layers (\(base)encoder.layer.N.attention.self.query/key/value)")
        if n > 0 { b.evidence.append("renamed \(n) LayerNorm gamma/beta tensors") }
        if !base.isEmpty { b.evidence.append("task-model prefix '\(base)' kept in parameter names") }
        b.evidence += s.notes
        let variant = "bert (hidden \(dim), \(layers.count) layers, \(s.heads) heads)"
        return try b.finish(inputs: inputs, outputs: outputs, family: name, variant: variant,
                            preprocessing: nil, outputShapeHint: hints)
    }
}

/// HF DistilBERT: `embeddings.{word,position}_embeddings`, `embeddings.LayerNorm`,
/// `transformer.layer.N.attention.{q,k,v,out}_lin`, `sa_layer_norm`, `ffn.lin1/lin2`,
/// `output_layer_norm`; optional `pre_classifier` + `classifier` (sequence classification,
/// keys under `distilbert.`).
enum DistilBERTFamily: ArchitectureFamily {
    static let name = "distilbert"

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        guard let base = b.basePrefix(["distilbert."], probe: "embeddings.word_embeddings.weight"),
              b.has(base + "transformer.layer.0.attention.q_lin.weight") else {
            throw RecognitionFailure("no 'transformer.layer.0.attention.q_lin.weight' with 'embeddings.word_embeddings.weight' (HF DistilBERT naming)")
        }
        let dim = try b.require(base + "embeddings.word_embeddings.weight", rank: 2)[1]
        let s = try EncoderSettings.resolve(hidden: dim, config: config, headsKey: "n_heads", epsKey: nil, actKey: "activation", dropoutKey: "dropout",
                                                attentionDropoutKey: "attention_dropout")
        var (x, _, inputs) = try b.encoderEmbeddings(base + "embeddings", eps: 1e-12, dropout: s.hiddenDropout, config: config)
        let mask = b.extendedAttentionMask(base + "extended_attention_mask")
        let layers = b.children(base + "transformer.layer")
        guard layers == Array(0..<layers.count) else { throw RecognitionFailure("transformer layers are not numbered 0..<\(layers.count)") }
        let hasHead = b.has("pre_classifier.weight") && b.has("classifier.weight")
        for l in layers {
            let p = "\(base)transformer.layer.\(l)"
            x = try b.encoderLayer(q: "\(p).attention.q_lin", k: "\(p).attention.k_lin", v: "\(p).attention.v_lin",
                                   o: "\(p).attention.out_lin", ln1: "\(p).sa_layer_norm",
                                   ff1: "\(p).ffn.lin1", ff2: "\(p).ffn.lin2", ln2: "\(p).output_layer_norm",
                                   x: x, mask: mask, dim: dim, s: s, attentionOutputDropout: false,
                                   output: l == layers.count - 1 && !hasHead ? "last_hidden_state" : nil)
        }
        var outputs = [x]
        var hints: [String: [Int?]] = [x: [nil, nil, dim]]
        if hasHead {
            let first = b.firstToken("pre_classifier", x)
            var (h, _) = try b.linear("pre_classifier", first, inFeatures: dim)
            h = b.act(.relu, "pre_classifier.relu", h)
            h = b.add("dropout", .dropout, [h], ["ratio": .float(0.2)])
            let (logits, classes) = try b.linear("classifier", h, inFeatures: dim, output: "logits")
            outputs = [logits]
            hints = [logits: [nil, classes]]
            b.evidence.append("sequence-classification head pre_classifier + classifier.weight [\(classes), \(dim)]")
        }
        b.evidence.append("\(base)embeddings.word_embeddings.weight: hidden size \(dim), no token-type embeddings; \(layers.count) layers \(base)transformer.layer.N.attention.q_lin/k_lin/v_lin/out_lin")
        b.evidence += s.notes.map { $0.replacingOccurrences(of: "LayerNorm eps 1e-12", with: "LayerNorm eps 1e-12 (DistilBERT's fixed value)") }
        return try b.finish(inputs: inputs, outputs: outputs, family: name, variant: "distilbert (hidden \(dim), \(layers.count) layers, \(s.heads) heads)",
                            preprocessing: nil, outputShapeHint: hints)
    }
}
