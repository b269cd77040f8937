import ArgumentParser
import Foundation
import Wconv

/// `wconv bench run MODEL --batch 16`: inference throughput (images/s) of one model.
struct BenchRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Measures inference throughput (images/s) of a model.",
        discussion: "Runs warm-up iterations, then times --iters forwards on seeded random input of the given batch and size. tools/bench-run runs the same forward in PyTorch side by side.")

    @Argument(help: "Model file (any supported format).") var model: String
    @Option(name: .long, help: "Batch size.") var batch: Int = 16
    @Option(name: .long, help: "Image height and width (image models).") var size: Int?
    @Option(name: .long, help: "Shape of the first input, comma-separated (e.g. 1,3,48,320 for a non-square image; 16,128 for a text model's tokens); overrides --batch and --size for it, and for inputs declared with the same shape (attention mask, token types).") var inputShape: String?
    @Option(name: .long, help: "Timed iterations.") var iters: Int = 5
    @Option(name: .long, help: "Untimed warm-up iterations.") var warmup: Int = 1
    @Flag(name: .long, help: "Also print the time per op and kernel over the timed iterations.") var profile = false
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var arithmetic: PrecisionOption
    @OptionGroup var family: ArchOption
    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard batch >= 1, iters >= 1, warmup >= 0, cpu.threads >= 1 else { throw ValidationError("--batch, --iters and --threads must be positive") }
    }

    func run() throws {
        let precision = try arithmetic.checked()
        let graph = try ModelIO.loadRunnable(path: model, arch: family.arch, toolVersion: wconvVersion)
        var shapes = graph.probeInputShapes()
        var batch = batch
        if let inputShape {
            let dims = inputShape.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = graph.inputs.first, !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) >= 1 }), dims.count == first.shape.count else {
                throw WconvError(.usage, "--input-shape '\(inputShape)': give \(graph.inputs.first?.shape.count ?? 0) positive comma-separated dims for input '\(graph.inputs.first?.name ?? "?")'")
            }
            batch = dims[0]!
        }
        var rng = SplitMix64(seed: 1)
        var inputs: [String: Tensor] = [:]
        for info in graph.inputs {
            var s = shapes[info.name] ?? info.shape.map { $0 ?? 1 }
            // The batch goes into the first dim unless another input declares it (an RNN state [2, 1, 128]).
            if !s.isEmpty, info.name == graph.inputs.first?.name || info.shape.first.map({ $0 == nil }) ?? true { s[0] = batch }
            if s.count == 4, let size { s[2] = size; s[3] = size }
            // Inputs declared like the first (a text model's attention mask and token types beside its
            // token ids) take its shape too: a [B, 1] mask would broadcast and time another model.
            if let inputShape, let first = graph.inputs.first, info.name == first.name || info.shape == first.shape {
                s = inputShape.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            }
            shapes[info.name] = s
            let n = s.reduce(1, *)
            inputs[info.name] = info.dtype.isFloatingPoint
                ? Tensor(shape: s, floats: (0..<n).map { _ in rng.nextGaussian() })
                : Tensor(shape: s, floats: (0..<n).map { _ in Float(rng.next() % UInt64(max(1, VerifyCommand.indexBound(graph, input: info.name)))) })
        }
        let t0 = Date()
        let session = try InferenceSession(graph: graph, threads: cpu.threads, precision: precision)
        let buildSeconds = Date().timeIntervalSince(t0)
        for _ in 0..<warmup { _ = try session.run(inputs) }
        var times: [Double] = []
        if profile { session.startProfiling() }
        for _ in 0..<iters {
            let t = Date()
            _ = try session.run(inputs)
            times.append(Date().timeIntervalSince(t))
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2], best = sorted[0]
        let ips = Double(batch) / median
        let peak = ProcStatus.read().hwm  // before the roof's own buffers
        let flops = try ModelFLOPs(graph, inputShapes: shapes).forward
        let gflops = flops / median / 1e9
        let roof = try BLASKernels.measureRoof()
        if stdout.json {
            printJSON(.object([
                ("model", .string(model)), ("architecture", graph.architecture.map(JSONValue.string) ?? .null), ("batch", .int(batch)),
                ("inputShapes", .object(shapes.keys.sorted().map { ($0, .array(shapes[$0]!.map(JSONValue.int))) })),
                ("threads", .int(cpu.threads)), ("precision", .string(precision.rawValue)), ("iters", .int(iters)), ("sessionBuildSeconds", .double(buildSeconds)),
                ("medianSeconds", .double(median)), ("bestSeconds", .double(best)), ("imagesPerSecond", .double(ips)),
                ("bestImagesPerSecond", .double(Double(batch) / best)), ("activationMB", .double(Double(session.plannedActivationFloats * 4) / 1e6)),
                ("peakRSSBytes", .int(peak)), ("gflopPerBatch", .double(flops / 1e9)), ("gflopsAchieved", .double(gflops)),
                ("gemmRoofGflops", .double(roof)), ("roofFraction", .double(gflops / roof)), ("kernels", KernelReport.json(loadBLAS: true)),
            ]))
        } else {
            print(KernelReport.lines(loadBLAS: true).joined(separator: "\n"))
            print("Precision: \(precision.summary)")
            print(String(format: "%@: batch %d, %d iters, median %.3f s/batch (best %.3f): %.2f images/s (session build %.2f s, activations %.0f MB)",
                         model, batch, iters, median, best, ips, buildSeconds, Double(session.plannedActivationFloats * 4) / 1e6))
            print(String(format: "arithmetic: %.1f GFLOP per batch (conv, linear, matmul): %.1f GFLOP/s, %.0f %% of the GEMM roof (sgemm 2048³ here: %.1f GFLOP/s)",
                         flops / 1e9, gflops, 100 * gflops / roof, roof))
            print("peak memory (VmHWM): \(Fmt.bytes(peak))")
            if profile {
                print("per op and kernel (ms per batch, steps per batch):")
                for p in session.stepProfile {
                    print(String(format: "  %8.1f  %4d  %@", 1000 * p.seconds / Double(iters), p.steps / iters, p.label))
                }
            }
        }
    }
}
