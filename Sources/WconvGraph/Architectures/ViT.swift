import WconvFormats
import Foundation
import WconvTensor

/// Where one pre-norm transformer block keeps its parameters.
struct ViTBlockNames {
    enum QKV {
        /// One [3D, D] projection, q/k/v in that order along the output (timm `attn.qkv`, torchvision `in_proj`).
        case fused(weight: String, bias: String?)
        /// Separate linears (Hugging Face `query`/`key`/`value`).
        case separate(q: String, k: String, v: String)
    }
    var prefix: String
    var norm1: String, qkv: QKV, proj: String, norm2: String, fc1: String, fc2: String
    /// timm layer scales (`ls1.gamma`, `ls2.gamma`), when present.
    var scale1: String?, scale2: String?
}

extension GraphBuilder {
    /// x + attn(norm1(x)) then x + mlp(norm2(x)), as timm's Block, torchvision's EncoderBlock and
    /// HF's ViTLayer compute it (dropouts identity in eval).
    func preNormBlock(_ n: ViTBlockNames, _ x: String, dim: Int, heads: Int, eps: Double, act: Op,
                      actAttrs: [String: AttributeValue]) throws -> String {
        let h = try layerNorm(n.norm1, x, dim: dim, eps: eps)
        var q: String, k: String, v: String
        switch n.qkv {
        case .fused(let weight, let bias):
            let w = try require(weight, rank: 2)
            guard w == [3 * dim, dim] else { throw RecognitionFailure("'\(weight)' \(w) is not a fused q/k/v projection [\(3 * dim), \(dim)]") }
            var ins = [h, weight]
            if let bias, let bs = shape(bias) {
                guard bs == [3 * dim] else { throw RecognitionFailure("'\(bias)' \(bs) does not match '\(weight)' \(w)") }
                ins.append(bias)
            }
            let qkv = add(n.prefix + ".qkv", .linear, ins)
            (q, k, v) = ["q", "k", "v"].enumerated().map { i, name in
                add("\(n.prefix).\(name)", .slice, [qkv], ["starts": .ints([i * dim]), "ends": .ints([(i + 1) * dim]), "axes": .ints([2])])
            }.tuple3
        case .separate(let qn, let kn, let vn):
            (q, _) = try linear(qn, h, inFeatures: dim)
            (k, _) = try linear(kn, h, inFeatures: dim)
            (v, _) = try linear(vn, h, inFeatures: dim)
        }
        let ctx = add(n.prefix + ".attention", .attention, [q, k, v],
                      ["heads": .int(heads), "scale": .float(1.0 / Double(dim / heads).squareRoot())])
        var (a, ad) = try linear(n.proj, ctx, inFeatures: dim)
        guard ad == dim else { throw RecognitionFailure("'\(n.proj)' projects to \(ad), not the width \(dim)") }
        if let s = n.scale1 { a = add(s + ".mul", .mul, [a, try vector(s, dim)]) }
        let x1 = add(n.prefix + ".residual1", .add, [x, a])
        var f = try layerNorm(n.norm2, x1, dim: dim, eps: eps)
        var fd: Int
        (f, fd) = try linear(n.fc1, f, inFeatures: dim)
        f = add(n.fc1 + ".act", act, [f], actAttrs)
        (f, fd) = try linear(n.fc2, f, inFeatures: fd)
        guard fd == dim else { throw RecognitionFailure("'\(n.fc2)' projects to \(fd), not the width \(dim)") }
        if let s = n.scale2 { f = add(s + ".mul", .mul, [f, try vector(s, dim)]) }
        return add(n.prefix + ".residual2", .add, [x1, f])
    }

    /// A [dim] parameter's name, checked.
    func vector(_ key: String, _ dim: Int) throws -> String {
        let s = try require(key)
        guard s == [dim] else { throw RecognitionFailure("'\(key)' \(s) is not a [\(dim)] vector") }
        return key
    }

    /// Patch embedding, class token and position embedding: conv (stride = kernel) → [B, N, D],
    /// the class token prepended (both padded to N+1 rows and added: the runtime needs no batch-sized
    /// broadcast of a parameter), plus the position embedding. Returns the tokens, D and N.
    func vitEmbeddings(conv: String, cls: String, pos: String) throws -> (String, Int, Int, [Int]) {
        let w = try require(conv + ".weight", rank: 4)
        guard w[1] == 3, w[2] == w[3], w[2] > 0 else { throw RecognitionFailure("'\(conv).weight' \(w) is not a square patch embedding on 3 channels") }
        let dim = w[0]
        let c = try require(cls)
        guard c == [1, 1, dim] else { throw RecognitionFailure("class token '\(cls)' \(c) is not [1, 1, \(dim)]") }
        let p = try require(pos, rank: 3)
        guard p[0] == 1, p[2] == dim, p[1] >= 2 else { throw RecognitionFailure("position embedding '\(pos)' \(p) is not [1, N+1, \(dim)]") }
        let n = p[1] - 1
        let side = Int(Double(n).squareRoot().rounded())
        guard side * side == n else { throw RecognitionFailure("position embedding '\(pos)' has \(n) patch positions, not a square grid") }
        let (patches, _) = try self.conv(conv, "input", inChannels: 3, stride: w[2], pad: 0)
        let flat = add(conv + ".flatten", .reshape, [patches], ["shape": .ints([0, 0, -1])])
        let tokens = add(conv + ".tokens", .transpose, [flat], ["perm": .ints([0, 2, 1])])
        let shifted = add(conv + ".pad", .pad, [tokens], ["pads": .ints([0, 1, 0, 0, 0, 0]), "mode": .string("constant"), "value": .float(0)])
        let clsRow = add(cls + ".pad", .pad, [cls], ["pads": .ints([0, 0, 0, 0, n, 0]), "mode": .string("constant"), "value": .float(0)])
        let withCls = add(cls + ".prepend", .add, [shifted, clsRow])
        return (add(pos + ".add", .add, [withCls, pos]), dim, n, [side * w[2], side * w[2]])
    }
}

private extension Array {
    var tuple3: (Element, Element, Element) { (self[0], self[1], self[2]) }
}

/// Vision Transformer (ViT) in timm's, torchvision's and Hugging Face's layouts: a patch-embedding
/// conv, class token and learned position embedding, pre-norm encoder blocks (LayerNorm → multi-head
/// self-attention → residual; LayerNorm → Linear → GELU → Linear → residual), a final LayerNorm,
/// and the class token's row into the head.
/// - timm: `patch_embed.proj`, `cls_token`, `pos_embed`, `blocks.N.{norm1, attn.qkv, attn.proj, norm2,
///   mlp.fc1, mlp.fc2[, ls1.gamma, ls2.gamma]}`, `norm`, `head` (or `fc_norm` + mean of the patch tokens:
///   global_pool 'avg'); LayerNorm eps 1e-6.
/// - torchvision: `conv_proj`, `class_token`, `encoder.pos_embedding`, `encoder.layers.encoder_layer_N.
///   {ln_1, self_attention.in_proj_weight/in_proj_bias, self_attention.out_proj, ln_2, mlp.0, mlp.3}`,
///   `encoder.ln`, `heads.head` (optional `heads.pre_logits` + tanh); eps 1e-6.
/// - Hugging Face ViTModel / ViTForImageClassification (`vit.` prefix): `embeddings.{cls_token,
///   position_embeddings, patch_embeddings.projection}`, `encoder.layer.N.{layernorm_before,
///   attention.attention.query/key/value, attention.output.dense, layernorm_after, intermediate.dense,
///   output.dense}` (or transformers 5's in-memory `layers.N.{attention.q_proj/k_proj/v_proj/o_proj, mlp.fc1/fc2}`),
///   `layernorm`, `classifier` or `pooler.dense` (+ tanh); eps and activation from config.json.
/// Heads: config.json (HF `num_attention_heads`, timm `model_args.num_heads`), else width / 64, with
/// the 16 heads of the 1280/1408/1664-wide presets (ViT-H, ViT-g, ViT-G) — the weights do not say.
/// The input size is fixed by the position embedding (√(N) patches a side).
enum ViTFamily: ArchitectureFamily {
    static let name = "vit"

    static func heads(dim: Int, config: JSONValue?, _ b: GraphBuilder) throws -> Int {
        let given = config?["num_attention_heads"]?.int ?? config?["model_args"]?["num_heads"]?.int
        if let h = given {
            guard h >= 1, dim % h == 0 else { throw RecognitionFailure("config.json gives \(h) heads, which do not divide the width \(dim)") }
            b.evidence.append("\(h) attention heads from config.json")
            return h
        }
        if [1280, 1408, 1664].contains(dim) {
            b.evidence.append("no config.json: 16 attention heads, as every \(dim)-wide ViT preset (ViT-H/g/G) has")
            return 16
        }
        guard dim % 64 == 0 else {
            throw RecognitionFailure("width \(dim) is not a multiple of 64, so the head count cannot be inferred; put the model's config.json (num_heads / num_attention_heads) beside the file")
        }
        b.evidence.append("no config.json: \(dim / 64) attention heads inferred as width \(dim) / 64 (ViT's head size) — supply config.json if the model differs")
        return dim / 64
    }

    static func build(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        if b.has("patch_embed.proj.weight") { return try buildTimm(b, config: config) }
        if b.has("conv_proj.weight"), b.has("class_token") { return try buildTorchvision(b) }
        if let base = b.basePrefix(["vit."], probe: "embeddings.patch_embeddings.projection.weight") { return try buildHF(b, base: base, config: config) }
        throw RecognitionFailure("no 'patch_embed.proj.weight' (timm), 'conv_proj.weight' + 'class_token' (torchvision) nor 'embeddings.patch_embeddings.projection.weight' (Hugging Face)")
    }

    static func blocks(_ b: GraphBuilder, _ prefix: String) throws -> [Int] {
        let ids = b.children(prefix)
        guard !ids.isEmpty, ids == Array(0..<ids.count) else { throw RecognitionFailure("'\(prefix).N' are not numbered 0..<\(ids.count)") }
        return ids
    }

    static let exactGELU: [String: AttributeValue] = ["approximate": .string("none")]

    static func buildTimm(_ b: GraphBuilder, config: JSONValue?) throws -> ModelGraph {
        for k in ["reg_token", "blocks.0.attn.q_norm.weight", "blocks.0.attn.norm.weight"] where b.has(k) {
            throw RecognitionFailure("'\(k)': register tokens / q-k norms are not part of the plain ViT this family builds")
        }
        var (x, dim, n, size) = try b.vitEmbeddings(conv: "patch_embed.proj", cls: "cls_token", pos: "pos_embed")
        let h = try heads(dim: dim, config: config, b)
        let ids = try blocks(b, "blocks")
        for i in ids {
            let p = "blocks.\(i)"
            x = try b.preNormBlock(ViTBlockNames(prefix: p, norm1: "\(p).norm1", qkv: .fused(weight: "\(p).attn.qkv.weight", bias: "\(p).attn.qkv.bias"),
                                                 proj: "\(p).attn.proj", norm2: "\(p).norm2", fc1: "\(p).mlp.fc1", fc2: "\(p).mlp.fc2",
                                                 scale1: b.has("\(p).ls1.gamma") ? "\(p).ls1.gamma" : nil,
                                                 scale2: b.has("\(p).ls2.gamma") ? "\(p).ls2.gamma" : nil),
                                   x, dim: dim, heads: h, eps: 1e-6, act: .gelu, actAttrs: exactGELU)
        }
        let avg = b.has("fc_norm.weight") || config?["global_pool"]?.string == "avg"
        if b.has("norm.weight") { x = try b.layerNorm("norm", x, dim: dim, eps: 1e-6) }
        var pooled: String
        if avg {
            let patches = b.add("pool.patches", .slice, [x], ["starts": .ints([1]), "ends": .ints([n + 1]), "axes": .ints([1])])
            pooled = b.add("pool", .reduceMean, [patches], ["axes": .ints([1]), "keepdims": .int(0)])
            if b.has("fc_norm.weight") { pooled = try b.layerNorm("fc_norm", pooled, dim: dim, eps: 1e-6) }
        } else {
            pooled = b.firstToken("pool", x)
        }
        let (logits, _) = try b.headOrFeatures("head", pooled, inFeatures: dim)
        b.evidence.append("timm ViT layout: patch_embed.proj \(size[0] / Int(Double(n).squareRoot()))-pixel patches, \(n) patches + class token, width \(dim), \(ids.count) blocks blocks.N (fused attn.qkv), \(avg ? "mean of the patch tokens" : "class token") into the head")
        let pre = EfficientNetZoo.timmPreprocessing(config) ?? Preprocessing(inputSize: size, resizeShorter: size[0] * 8 / 7, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: "bicubic")
        let arch = config?["architecture"]?.string
        return try finish(b, logits, size: size, variant: arch.map { "timm \($0)" } ?? preset(dim: dim, depth: ids.count, patch: size[0] / Int(Double(n).squareRoot()), prefix: "vit"),
                          preprocessing: pre)
    }

    static func buildTorchvision(_ b: GraphBuilder) throws -> ModelGraph {
        var (x, dim, n, size) = try b.vitEmbeddings(conv: "conv_proj", cls: "class_token", pos: "encoder.pos_embedding")
        let h = try heads(dim: dim, config: nil, b)
        var layers: [Int] = []
        while b.hasModule("encoder.layers.encoder_layer_\(layers.count)") { layers.append(layers.count) }
        guard !layers.isEmpty else { throw RecognitionFailure("no 'encoder.layers.encoder_layer_0' (torchvision ViT)") }
        for i in layers {
            let p = "encoder.layers.encoder_layer_\(i)"
            x = try b.preNormBlock(ViTBlockNames(prefix: p, norm1: "\(p).ln_1",
                                                 qkv: .fused(weight: "\(p).self_attention.in_proj_weight", bias: "\(p).self_attention.in_proj_bias"),
                                                 proj: "\(p).self_attention.out_proj", norm2: "\(p).ln_2", fc1: "\(p).mlp.0", fc2: "\(p).mlp.3",
                                                 scale1: nil, scale2: nil),
                                   x, dim: dim, heads: h, eps: 1e-6, act: .gelu, actAttrs: exactGELU)
        }
        x = try b.layerNorm("encoder.ln", x, dim: dim, eps: 1e-6)
        var pooled = b.firstToken("class_token_out", x)
        var width = dim
        if b.has("heads.pre_logits.weight") {
            (pooled, width) = try b.linear("heads.pre_logits", pooled, inFeatures: dim)
            pooled = b.add("heads.act", .tanh, [pooled])
        }
        let (logits, _) = try b.headOrFeatures("heads.head", pooled, inFeatures: width)
        let patch = size[0] / Int(Double(n).squareRoot())
        b.evidence.append("torchvision ViT layout: conv_proj \(patch)-pixel patches, \(n) patches + class_token, width \(dim), \(layers.count) layers encoder.layers.encoder_layer_N (in_proj q/k/v)")
        let variant = preset(dim: dim, depth: layers.count, patch: patch, prefix: "vit_tv")
        return try finish(b, logits, size: size, variant: variant, preprocessing: Preprocessing(inputSize: size, resizeShorter: size[0] * 8 / 7))
    }

    static func buildHF(_ b: GraphBuilder, base: String, config: JSONValue?) throws -> ModelGraph {
        if let t = config?["model_type"]?.string, t != "vit" {
            throw RecognitionFailure("config.json says model_type '\(t)', not 'vit'")
        }
        let e = base + "embeddings."
        var (x, dim, n, size) = try b.vitEmbeddings(conv: e + "patch_embeddings.projection", cls: e + "cls_token", pos: e + "position_embeddings")
        let h = try heads(dim: dim, config: config, b)
        var cfg = config ?? [:]
        cfg["num_attention_heads"] = .int(h)
        let s = try EncoderSettings.resolve(hidden: dim, config: cfg, headsKey: "num_attention_heads", epsKey: "layer_norm_eps", actKey: "hidden_act")
        // Checkpoints (and transformers 5's save_pretrained) name layers `encoder.layer.N…`; transformers 5
        // renames them in memory (`layers.N.attention.q_proj`, `mlp.fc1`), which a torch.save of state_dict() keeps.
        let modern = !b.hasModule(base + "encoder.layer") && b.has(base + "layers.0.attention.q_proj.weight")
        let layersPrefix = base + (modern ? "layers" : "encoder.layer")
        let layers = try blocks(b, layersPrefix)
        let hasClassifier = b.has("classifier.weight")
        for i in layers {
            let p = "\(layersPrefix).\(i)"
            let a = modern ? "\(p).attention" : "\(p).attention.attention"
            let q = modern ? ("\(a).q_proj", "\(a).k_proj", "\(a).v_proj") : ("\(a).query", "\(a).key", "\(a).value")
            x = try b.preNormBlock(ViTBlockNames(prefix: p, norm1: "\(p).layernorm_before", qkv: .separate(q: q.0, k: q.1, v: q.2),
                                                 proj: modern ? "\(p).attention.o_proj" : "\(p).attention.output.dense", norm2: "\(p).layernorm_after",
                                                 fc1: modern ? "\(p).mlp.fc1" : "\(p).intermediate.dense",
                                                 fc2: modern ? "\(p).mlp.fc2" : "\(p).output.dense", scale1: nil, scale2: nil),
                                   x, dim: dim, heads: h, eps: s.eps, act: s.act, actAttrs: s.actAttrs)
        }
        x = try b.layerNorm(base + "layernorm", x, dim: dim, eps: s.eps, output: hasClassifier ? nil : "last_hidden_state")
        var outputs = [x]
        var hints: [String: [Int?]] = [x: [nil, n + 1, dim]]
        if hasClassifier {
            let (logits, classes) = try b.linear("classifier", b.firstToken("classifier", x), inFeatures: dim, output: "logits")
            outputs = [logits]
            hints = [logits: [nil, classes]]
            b.evidence.append("image-classification head classifier.weight [\(classes), \(dim)] on the final LayerNorm's class token")
        } else if b.has(base + "pooler.dense.weight") {
            var (pooled, _) = try b.linear(base + "pooler.dense", b.firstToken(base + "pooler", x), inFeatures: dim)
            pooled = b.add(base + "pooler.activation", .tanh, [pooled], output: "pooler_output")
            outputs.append(pooled)
            hints[pooled] = [nil, dim]
        }
        b.evidence.append("Hugging Face ViT layout: \(e)patch_embeddings.projection, \(n) patches + cls_token, width \(dim), \(layers.count) layers \(layersPrefix).N\(modern ? " (transformers 5 in-memory names)" : "")")
        b.evidence += s.notes.filter { !$0.contains("heads") }
        let pre = Preprocessing(inputSize: size, resizeShorter: nil, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        return try b.finish(inputs: [ValueInfo(name: "input", dtype: .f32, shape: [nil, 3, size[0], size[1]])], outputs: outputs,
                            family: name, variant: "hf vit (width \(dim), \(layers.count) layers, \(h) heads)", preprocessing: pre, outputShapeHint: hints)
    }

    /// Names the standard sizes (timm `vit_base_patch16`, torchvision `vit_b_16`); custom sizes say so.
    static func preset(dim: Int, depth: Int, patch: Int, prefix: String) -> String {
        let sizes: [(Int, Int, String, String)] = [(192, 12, "tiny", "ti"), (384, 12, "small", "s"), (768, 12, "base", "b"),
                                                  (1024, 24, "large", "l"), (1280, 32, "huge", "h")]
        guard let s = sizes.first(where: { $0.0 == dim && $0.1 == depth }) else { return "vit (custom: width \(dim), \(depth) blocks, patch \(patch))" }
        return prefix == "vit_tv" ? "vit_\(s.3)_\(patch)" : "vit_\(s.2)_patch\(patch)"
    }

    static func finish(_ b: GraphBuilder, _ logits: String, size: [Int], variant: String, preprocessing: Preprocessing) throws -> ModelGraph {
        try b.finish(inputs: [ValueInfo(name: "input", dtype: .f32, shape: [nil, 3, size[0], size[1]])], outputs: [logits],
                     family: name, variant: variant, preprocessing: preprocessing)
    }
}
