import ArgumentParser
import Foundation
import Wconv

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Runs two models on the same inputs and compares outputs.",
        discussion: "Both models run in eval mode on the same seeded random probe inputs (images: N(0,1) at the model's input size; token ids: uniform over the smallest embedding table). Reports max absolute and relative difference per output; exits 4 when any element differs by more than atol + rtol·|b|.")

    @Argument(help: "First model (any supported format).") var a: String
    @Argument(help: "Second model (any supported format).") var b: String
    @Option(name: .long, help: "Number of probe inputs (batches of one).") var inputs: Int = 2
    @Option(name: .long, help: "Absolute tolerance.") var atol: Double = 1e-5
    @Option(name: .long, help: "Relative tolerance.") var rtol: Double = 1e-4
    @Option(name: .long, help: "Seed of the probe inputs.") var seed: UInt64 = 0
    @OptionGroup var cpu: ThreadsOption
    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard inputs >= 1 else { throw ValidationError("--inputs must be at least 1") }
        guard atol >= 0, rtol >= 0 else { throw ValidationError("--atol and --rtol must be non-negative") }
    }

    func run() throws {
        let ga = try ModelIO.loadRunnable(path: a, toolVersion: wconvVersion), gb = try ModelIO.loadRunnable(path: b, toolVersion: wconvVersion)
        guard ga.inputs.count == gb.inputs.count, ga.outputs.count == gb.outputs.count else {
            throw WconvError(.difference, "the models differ in structure: \(ga.inputs.count)/\(ga.outputs.count) vs \(gb.inputs.count)/\(gb.outputs.count) inputs/outputs")
        }
        let sa = try InferenceSession(graph: ga, threads: cpu.threads), sb = try InferenceSession(graph: gb, threads: cpu.threads)
        let shapes = ga.probeInputShapes()
        var rng = SplitMix64(seed: seed)
        var maxAbs = [Double](repeating: 0, count: ga.outputs.count), maxRel = maxAbs
        var failures = [Int](repeating: 0, count: ga.outputs.count)
        var outShapes = [[Int]](repeating: [], count: ga.outputs.count)
        for _ in 0..<inputs {
            var ia: [String: Tensor] = [:], ib: [String: Tensor] = [:]
            for (k, info) in ga.inputs.enumerated() {
                let shape = shapes[info.name] ?? info.shape.map { $0 ?? 1 }
                let n = shape.reduce(1, *)
                let t: Tensor
                if info.dtype.isFloatingPoint {
                    t = Tensor(shape: shape, floats: (0..<n).map { _ in rng.nextGaussian() })
                } else {
                    let bound = max(1, Self.indexBound(ga, input: info.name))
                    t = Tensor(shape: shape, floats: (0..<n).map { _ in Float(rng.next() % UInt64(bound)) })
                }
                ia[info.name] = t
                ib[gb.inputs[k].name] = t
            }
            let oa = try sa.run(ia), ob = try sb.run(ib)
            for k in 0..<ga.outputs.count {
                let x = oa[ga.outputs[k].name]!, y = ob[gb.outputs[k].name]!
                guard x.shape == y.shape else {
                    throw WconvError(.difference, "output \(k) ('\(ga.outputs[k].name)' vs '\(gb.outputs[k].name)') has shape \(x.shape) vs \(y.shape)")
                }
                outShapes[k] = x.shape
                let xv = x.floats(), yv = y.floats()
                for i in 0..<xv.count {
                    let d = abs(Double(xv[i]) - Double(yv[i]))
                    if d.isNaN || d > atol + rtol * abs(Double(yv[i])) { failures[k] += 1 }
                    if d.isNaN { maxAbs[k] = .nan; continue }
                    maxAbs[k] = max(maxAbs[k], d)
                    maxRel[k] = max(maxRel[k], d / max(abs(Double(yv[i])), 1e-12))
                }
            }
        }
        let ok = failures.allSatisfy { $0 == 0 }
        if stdout.json {
            printJSON(.object([
                ("a", .string(a)), ("b", .string(b)), ("inputs", .int(inputs)), ("seed", JSONValue(seed)),
                ("atol", .double(atol)), ("rtol", .double(rtol)), ("match", .bool(ok)),
                ("outputs", .array((0..<ga.outputs.count).map { k in
                    .object([("name", .string(ga.outputs[k].name)), ("shape", .array(outShapes[k].map(JSONValue.int))),
                             ("maxAbsDiff", .double(maxAbs[k])), ("maxRelDiff", .double(maxRel[k])),
                             ("elementsBeyondTolerance", .int(failures[k]))])
                })),
            ]))
        } else {
            for k in 0..<ga.outputs.count {
                print(String(format: "%@ %@: max abs diff %.3g, max rel diff %.3g, %d elements beyond tolerance",
                             ga.outputs[k].name, "\(outShapes[k])", maxAbs[k], maxRel[k], failures[k]))
            }
            print(ok ? "match (atol \(atol), rtol \(rtol), \(inputs) probe input(s), seed \(seed))" : "DIFFERENT")
        }
        if !ok {
            throw WconvError(.difference, "outputs differ beyond atol \(atol) + rtol \(rtol)·|b|")
        }
    }

    /// Index inputs feed embeddings: probe ids stay below the smallest table that reads them.
    static func indexBound(_ g: ModelGraph, input: String) -> Int {
        var bound = Int.max
        for n in g.nodes where n.op == .embedding && n.inputs.first == input && n.inputs.count > 1 {
            if let w = g.parameters[n.inputs[1]] ?? g.aliases[n.inputs[1]].flatMap({ g.parameters[$0] }), let v = w.shape.first {
                bound = min(bound, v)
            }
        }
        return bound == Int.max ? 2 : bound
    }
}
