#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation
import Wconv

/// `wconv bench train --ranks N`: fine-tuning steps on a synthetic global batch, sharded over N MPI
/// ranks with gradients all-reduced, as `finetune` does under mpirun.
extension BenchTrainCommand {
    func runDataParallel(ranks n: Int) throws {
        if n > 1 && !Communicator.launchedByMPI() { Foundation.exit(try relaunch(ranks: n)) }
        let comm = try Communicator.start(n > 1 ? .mpi : .none)
        if comm.usesMPI { Console.rank = comm }
        guard comm.size == n else { throw WconvError(.usage, "launched as \(comm.size) ranks but --ranks \(n)") }
        let parallel = DataParallel(comm)
        let (graph, label, _) = try network()
        guard graph.inputs.count == 1 else {
            throw WconvError(.usage, "--ranks measures models with one image input; this one takes \(graph.inputs.map(\.name).joined(separator: ", ")) (run without --ranks)")
        }
        let p = graph.preprocessing ?? .imagenet
        let h = p.inputSize.first ?? 224, w = p.inputSize.count > 1 ? p.inputSize[1] : h
        // The same global batch on every rank; each keeps its shard.
        let per = 3 * h * w, part = parallel.shardRange(batchSize)
        var rng = RNG(seed: 1)
        let all = (0..<(batchSize * per)).map { _ in Float(rng.normal()) }
        let x = Tensor(shape: [part.count, 3, h, w], floats: Array(all[(part.lowerBound * per)..<(part.upperBound * per)]))
        let labels = part.map { $0 % classes }
        let trainable = Set(try LayerGrouping(graph: graph).groups.flatMap(\.parameters))
        let s = try TrainingSession(graph: graph, trainable: trainable, threads: cpu.threads, precision: arithmetic.checked())
        let opt = Optimizer(kind: .adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled: true),
                            groups: [ParamGroup(name: "all", parameters: trainable.sorted(), lr: 1e-4, weightDecay: 0.01)])
        let layout = DataParallel.GradientLayout(s)
        let out = graph.outputs[0].name
        var reduceSeconds = 0.0
        func step() throws {
            let logits = try s.forward([graph.inputs[0].name: x], training: true)[out]!
            let (_, g) = try CrossEntropyLoss().loss(logits: logits.floats(), targets: labels, classes: classes)
            let grads = try s.backward(outputGradients: [out: Tensor(shape: logits.shape, floats: g)])
            let t = Communicator.now()
            let r = try parallel.reduce(gradients: grads, layout: layout, weight: Double(labels.count), sums: [])
            reduceSeconds += Communicator.now() - t
            try opt.step(parameters: s, gradients: r.gradients)
        }
        try step()
        try comm.barrier(what: "benchmark start")
        reduceSeconds = 0
        let t0 = Communicator.now()
        for _ in 0..<steps { try step() }
        let seconds = Communicator.now() - t0
        // The all-reduce alone, ranks in step (the loop's figure also holds waiting for the slowest rank).
        var alone = Double.infinity
        for _ in 0..<3 {
            try comm.barrier(what: "all-reduce timing")
            let t = Communicator.now()
            _ = try parallel.reduce(gradients: [:], layout: layout, weight: 1, sums: [])
            alone = min(alone, Communicator.now() - t)
        }
        let figures = try comm.allreduceSum([reduceSeconds, alone], what: "benchmark figures")
        guard comm.isRoot else { return }
        let imagesPerSecond = Double(batchSize * steps) / seconds
        let share = figures[0] / Double(n) / seconds
        let mb = Double(layout.names.reduce(0) { $0 + layout.shapes[$1]!.reduce(1, *) }) * 4 / 1e6
        if stdout.json {
            printJSON(.object([("model", .string(label)), ("batch_size", .int(batchSize)), ("ranks", .int(n)), ("threads", .int(cpu.threads)),
                               ("images_per_second", .double(imagesPerSecond)), ("allreduce_share", .double(share)),
                               ("gradient_megabytes", .double(mb)), ("step_seconds", .double(seconds / Double(steps))),
                               ("allreduce_seconds", .double(n > 1 ? figures[1] / Double(n) : 0))]))
        } else {
            print("data-parallel fine-tuning, \(label), global batch \(batchSize), \(h)x\(w), \(n) rank\(n == 1 ? "" : "s") × \(cpu.threads) thread\(cpu.threads == 1 ? "" : "s"):")
            print("  \(fmt(imagesPerSecond, 1)) img/s, \(fmt(seconds / Double(steps), 3)) s/step; gradient all-reduce (incl. waiting for the slowest rank) \(fmt(share * 100, 1))% of the step, \(fmt(mb, 1)) MB per step\(n > 1 ? "; the all-reduce alone \(fmt(figures[1] / Double(n) * 1000, 1)) ms" : "")")
        }
    }

    /// Runs this same command under `mpirun -np ranks`; returns its exit status.
    func relaunch(ranks: Int) throws -> Int32 {
        guard let mpirun = Communicator.mpirunPath() else {
            throw WconvError(.usage, "--ranks \(ranks) needs Open MPI's mpirun (apt-get install openmpi-bin, as tools/install-deps does)")
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        // Threads of one rank must not share one core: no binding; oversubscribe when ranks × threads > cores.
        var args = ["--oversubscribe", "--bind-to", "none", "-np", "\(ranks)"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = args + [me] + CommandLine.arguments.dropFirst()
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
