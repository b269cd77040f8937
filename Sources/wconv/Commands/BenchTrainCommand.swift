import ArgumentParser
import Foundation
import Wconv

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Measures training images/s: full fine-tuning and feature extraction (cached features) on synthetic batches.",
                                                    discussion: "A text model (inputs input_ids, attention_mask, …) gets random unpadded token ids of --seq-len tokens; its rates are sequences/s (the JSON keeps the key images_per_second, with unit \"sequences\").")

    @Argument(help: "Model file (any supported format).") var model: String?
    @Option(help: "Benchmark a built-in network instead of a file: resnet18.") var synthetic: String?
    @Option(help: "Input size for --synthetic.") var size: Int = 224
    @Option(name: .customLong("seq-len"), help: "Tokens per sequence for a text model.") var seqLen: Int = 128
    @Option(help: "Epochs for the feature-extract projection (cached vs uncached).") var epochs: Int = 10
    @Option(name: .customLong("batch-size"), help: "Batch size.") var batchSize: Int = 16
    @Option(help: "Timed steps per measurement (after one warm-up step).") var steps: Int = 3
    @Option(help: "Classes of the new head.") var classes: Int = 10
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var arithmetic: PrecisionOption
    @Option(help: "Data-parallel ranks: runs itself under `mpirun -np N` and measures fine-tuning with the batch sharded and gradients all-reduced.") var ranks: Int?
    @OptionGroup var stdout: JSONFlag
    @Flag(name: .long, help: "Also print the time per op and kernel (forward and backward) of the timed full fine-tune steps.") var profile = false

    func validate() throws {
        if let syn = synthetic, syn != "resnet18" { throw ValidationError("--synthetic '\(syn)': only resnet18 is built in") }
        guard synthetic != nil || model != nil else { throw ValidationError("give a model file or --synthetic resnet18") }
        if let n = ranks {
            guard n >= 1 else { throw ValidationError("--ranks must be at least 1") }
            guard batchSize >= n else { throw ValidationError("--batch-size \(batchSize) is the global batch: give at least one sample per rank (\(n))") }
        }
    }

    func run() throws {
        let precision = try arithmetic.checked()
        if let ranks { return try runDataParallel(ranks: ranks) }
        let (graph, label, rep) = try network()
        let (feeds, shapeLabel, unit) = syntheticBatch(graph)
        let labels = (0..<batchSize).map { $0 % classes }
        let grouping = try LayerGrouping(graph: graph)
        let all = Set(grouping.groups.flatMap(\.parameters))
        let head = Set(grouping.head.parameters)
        var results: [String: Double] = [:]
        let inputShapes = feeds.mapValues(\.shape)
        var gflop: [String: Double] = [:]  // per image
        var stepProfile: [(label: String, seconds: Double, steps: Int)] = []
        for (name, trainable) in [("finetune", all), ("feature-extract (uncached)", head)] {
            let s = try TrainingSession(graph: graph, trainable: trainable, threads: cpu.threads, precision: precision)
            let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled: true),
                                groups: [ParamGroup(name: "all", parameters: trainable.sorted(), lr: 1e-4, weightDecay: 0.01)])
            func step() throws {
                let out = try s.forward(feeds, training: true)
                let logits = out[graph.outputs[0].name]!
                let (_, g) = try CrossEntropyLoss().loss(logits: logits.floats(), targets: labels, classes: classes)
                // As the trainer steps: gradients read where backward left them.
                try s.backwardInPlace(outputGradients: [graph.outputs[0].name: Tensor(shape: logits.shape, floats: g)])
                try opt.step(parameters: s, gradients: s)
            }
            try step()
            if profile && name == "finetune" { s.startProfiling() }
            let t0 = Date()
            for _ in 0..<steps { try step() }
            results[name] = Double(batchSize * steps) / Date().timeIntervalSince(t0)
            if profile && name == "finetune" { stepProfile = s.stepProfile }
            gflop[name] = try ModelFLOPs(graph, inputShapes: inputShapes, trainable: trainable).trainingStep / 1e9 / Double(batchSize)
        }
        // Feature extraction with the cache: the frozen forward once, then only the head per epoch.
        if let split = GraphCut.split(graph, at: rep.featureValue, rank: 2) {
            var front = split.front
            front.outputs = [ValueInfo(name: rep.featureValue, shape: [nil, nil])]
            let inf = try InferenceSession(graph: front, threads: cpu.threads, precision: precision)
            let t0 = Date()
            let frontFeeds = feeds.filter { f in front.inputs.contains { $0.name == f.key } }
            for _ in 0..<steps { _ = try inf.run(frontFeeds) }
            results["frozen forward (once per image)"] = Double(batchSize * steps) / Date().timeIntervalSince(t0)
            gflop["frozen forward (once per image)"] = try ModelFLOPs(front, inputShapes: frontFeeds.mapValues(\.shape)).forward / 1e9 / Double(batchSize)
        }
        // A feature-extract run of `epochs` epochs over 1000 images: uncached pays the frozen forward
        // every epoch; cached pays it once (the head's cost is negligible next to it).
        if let un = results["feature-extract (uncached)"], let fr = results["frozen forward (once per image)"] {
            let uncached = Double(epochs) * 1000 / un, cached = 1000 / fr
            results["projected \(epochs)-epoch feature-extract s/1000 images, uncached"] = uncached
            results["projected \(epochs)-epoch feature-extract s/1000 images, cached"] = cached
        }
        let peak = ProcStatus.read().hwm  // before the roof's own buffers
        let roof = try BLASKernels.measureRoof()
        let achieved = gflop.reduce(into: [String: Double]()) { $0[$1.key] = $1.value * (results[$1.key] ?? 0) }
        if stdout.json {
            func sorted(_ d: [String: Double]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) }) }
            printJSON(.object([("model", .string(label)), ("batch_size", .int(batchSize)), ("precision", .string(precision.rawValue)), ("unit", .string(unit)), ("images_per_second", sorted(results)),
                               ("gflop_per_image", sorted(gflop)), ("gflops_achieved", sorted(achieved)), ("gemm_roof_gflops", .double(roof)),
                               ("roof_fraction", sorted(achieved.mapValues { $0 / roof })), ("peak_rss_bytes", .int(peak)),
                               ("kernels", KernelReport.json(loadBLAS: true))]))
        } else {
            print(KernelReport.lines(loadBLAS: true).joined(separator: "\n"))
            print("Precision: \(precision.trainingSummary)")
            print("training throughput, \(label), batch \(batchSize), \(shapeLabel), \(cpu.threads) threads:")
            let perSecond = unit == "images" ? " img/s" : " seq/s"
            for (k, v) in results.sorted(by: { $0.key < $1.key }) {
                var line = "  \(k.padding(toLength: 62, withPad: " ", startingAt: 0)) \(fmt(v, 1))\(k.hasPrefix("projected") ? " s" : perSecond)"
                if let a = achieved[k] { line += String(format: "  %.1f GFLOP/s, %.0f %% of the GEMM roof", a, 100 * a / roof) }
                print(line)
            }
            print(String(format: "GEMM roof (sgemm 2048³ here): %.1f GFLOP/s; GFLOP counts conv, linear and matmul work (forward + backward)", roof))
            print("peak memory (VmHWM): \(Fmt.bytes(peak))")
            if profile {
                print("full fine-tune step per op and kernel (ms per step, steps per step):")
                for p in stepProfile { print(String(format: "  %8.1f  %4d  %@", 1000 * p.seconds / Double(steps), p.steps / steps, p.label)) }
            }
        }
    }

    /// Random inputs of one batch: images N(0, 1) at the model's input size, or for a text model
    /// unpadded token ids (never the [PAD] id 0) of `seqLen` tokens. Returns the feeds, the shape
    /// for the report and the unit of the rates.
    func syntheticBatch(_ graph: ModelGraph) -> (feeds: [String: Tensor], shape: String, unit: String) {
        var rng = RNG(seed: 1)
        if graph.inputs.contains(where: { $0.name == "input_ids" }) {
            let vocab = max(2, VerifyCommand.indexBound(graph, input: "input_ids"))
            let ids = Tensor(shape: [batchSize, seqLen], floats: (0..<(batchSize * seqLen)).map { _ in Float(1 + Int(rng.uniform(0, Double(vocab - 1)))) })
            return (graph.unpaddedTextFeeds(["input_ids": ids.converted(to: .i64).tensor]).feeds, "\(seqLen) tokens", "sequences")
        }
        let p = graph.preprocessing ?? .imagenet
        let h = p.inputSize.first ?? 224, w = p.inputSize.count > 1 ? p.inputSize[1] : h
        let x = Tensor(shape: [batchSize, 3, h, w], floats: (0..<(batchSize * 3 * h * w)).map { _ in Float(rng.normal()) })
        return ([graph.inputs[0].name: x], "\(h)x\(w)", "images")
    }

    /// The benchmarked network with a new head of `classes` outputs.
    func network() throws -> (graph: ModelGraph, label: String, head: HeadReplacement.Result) {
        let graph: ModelGraph
        let label: String
        if let model, synthetic == nil {
            graph = try ModelIO.load(path: model, toolVersion: wconvVersion, hashSource: false)
            label = modelName(model)
        } else {
            graph = SyntheticModels.resnet18(classes: 1000, input: size)
            label = "synthetic resnet18"
        }
        let rep = try HeadReplacement.replace(graph, classes: (0..<classes).map { "c\($0)" }, dropout: 0, seed: 0)
        return (rep.graph, label, rep)
    }
}
