import ArgumentParser
import Foundation
import Wconv

/// `wconv bench conv`: conv forward per layer shape, im2col + BLAS vs oneDNN (issue 9).
struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv", abstract: "Times conv forward per layer shape: im2col + BLAS against oneDNN.",
        discussion: "Shapes are the distinct conv layers of ResNet-50, ResNet-18, EfficientNet-B0 (batch 16 at 224) and the few-label ResNet [1,1,1,1] (batch 10 at 32), bias + ReLU fused. Variants alternate within each repetition; medians in ms per call. 'blocked+ro' includes the NCHW reorders before and after; 'blocked' is the conv alone, what a chain of layers kept in oneDNN's layout costs.")

    @Option(name: .long, help: "Comma-separated: \(ConvEngineBench.models.joined(separator: ", ")).")
    var models: String = ConvEngineBench.models.joined(separator: ",")

    @Option(name: .long, help: "Repetitions (rounds over the variants); medians are reported.")
    var reps: Int = 5

    @OptionGroup var cpu: ThreadsOption

    @OptionGroup var output: JSONFlag

    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    private func json(_ r: ConvEngineBench.Row) -> JSONValue {
        let kernels: [JSONValue] = [.string(r.implementations.nchw), .string(r.implementations.blocked), .string(r.implementations.nhwc)]
        return .object([("model", .string(r.shape.model)), ("layer", .string(r.shape.label)), ("count", .int(r.shape.count)),
                        ("currentMs", .double(r.current)), ("nchwMs", .double(r.nchw)), ("blockedReorderedMs", .double(r.blockedReordered)),
                        ("blockedMs", .double(r.blocked)), ("nhwcReorderedMs", .double(r.nhwcReordered)), ("nhwcMs", .double(r.nhwc)), ("relativeError", .double(r.relativeError)),
                        ("kernels", .array(kernels))])
    }

    func run() throws {
        var shapes: [ConvEngineBench.Shape] = []
        for m in models.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            guard let s = ConvEngineBench.shapes(m) else {
                throw WconvError(.usage, "--models: unknown '\(m)'; choose from \(ConvEngineBench.models.joined(separator: ", "))")
            }
            shapes += s
        }
        if !output.json {
            print(KernelReport.lines(loadBLAS: true).joined(separator: "\n"))
            print("threads \(cpu.threads), \(reps) reps; ms per call (median); ratio = current / oneDNN (> 1: oneDNN faster)")
            print("model            layer                      n  current     nchw   blk+ro  blocked  nhwc+ro     nhwc  oneDNN kernels nchw | blocked (reorders) | nhwc (reorders)")
        }
        let rows = try ConvEngineBench.run(shapes, reps: reps, threads: cpu.threads) { r in
            guard !output.json else { return }
            print(pad(r.shape.model, 16) + " " + pad(r.shape.label, 24) + String(format: " %3d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f  %@ | %@ | %@%@", r.shape.count,
                         r.current, r.nchw, r.blockedReordered, r.blocked, r.nhwcReordered, r.nhwc,
                         r.implementations.nchw, r.implementations.blocked, r.implementations.nhwc,
                         r.relativeError > 1e-4 ? String(format: " (rel. error %.1g)", r.relativeError) : ""))
            fflush(stdout)
        }
        // Per model: Σ count × ms for each variant, and ratios to today's kernel.
        var totals: [(String, [Double])] = []
        for m in Set(rows.map { $0.shape.model }).sorted() {
            var t = [Double](repeating: 0, count: 6)
            for r in rows where r.shape.model == m {
                let c = Double(r.shape.count)
                t[0] += c * r.current; t[1] += c * r.nchw; t[2] += c * r.blockedReordered; t[3] += c * r.blocked; t[4] += c * r.nhwcReordered; t[5] += c * r.nhwc
            }
            totals.append((m, t))
        }
        if output.json {
            let doc: JSONValue = .object([
                ("kernels", KernelReport.json(loadBLAS: true)), ("threads", .int(cpu.threads)), ("reps", .int(reps)),
                ("rows", .array(rows.map(json))),
                ("totals", .array(totals.map { m, t in
                    .object([("model", .string(m)), ("currentMs", .double(t[0])), ("nchwMs", .double(t[1])), ("blockedReorderedMs", .double(t[2])),
                             ("blockedMs", .double(t[3])), ("nhwcReorderedMs", .double(t[4])), ("nhwcMs", .double(t[5]))])
                })),
            ])
            printJSON(doc)
            return
        }
        print("\nconv layers per network (Σ count × ms): current · nchw · blocked+reorders · blocked · nhwc+reorders · nhwc  (current ÷ each)")
        for (m, t) in totals {
            print(pad(m, 16) + String(format: " %8.1f · %8.1f · %8.1f · %8.1f · %8.1f · %8.1f   (%.2f · %.2f · %.2f · %.2f · %.2f)", t[0], t[1], t[2], t[3], t[4], t[5],
                         t[0] / t[1], t[0] / t[2], t[0] / t[3], t[0] / t[4], t[0] / t[5]))
        }
    }
}
