import ArgumentParser
import Wconv

// The options several commands take, defined once so that their spelling, default and help agree.

/// `--json`: one JSON document on stdout instead of the human output (docs/cli-json.md).
struct JSONFlag: ParsableArguments {
    @Flag(help: "Print one JSON document on stdout.")
    var json = false
}

/// `--threads`: the CPU threads of BLAS and the runtime's loops.
struct ThreadsOption: ParsableArguments {
    @Option(help: "CPU threads.")
    var threads: Int = 2
}

/// `--precision f32|bf16` of inference and training commands.
struct PrecisionOption: ParsableArguments {
    @Option(help: "Arithmetic of convolutions and linear layers: f32, or bf16 (bfloat16 on oneDNN with f32 accumulation; in training f32 master weights, mixed precision; CPUs with AVX512_BF16 or AMX only).")
    var precision: Precision = .f32

    /// The precision, refused (usage error) when this CPU cannot run it; bf16 on a CPU where it is
    /// slower than f32 runs as asked, with a warning that gives the measured figures.
    func checked() throws -> Precision {
        if let why = Precision.unsupportedReason(precision) { throw WconvError(.usage, why) }
        if precision == .bf16, let m = BF16SpeedProbe.measurement, let advice = BF16SpeedProbe.advice(m) {
            stderrLine("warning: " + advice)
        }
        return precision
    }
}

extension Precision: ExpressibleByArgument {}

/// `--arch`: the architecture family a bare state dict is read as, instead of the recognised one.
struct ArchOption: ParsableArguments {
    @Option(help: "Force an architecture family for bare state dicts (\(ArchitectureRecognizer.familyNames.joined(separator: ", "))).")
    var arch: String?
}

/// `--key`: where the state dict sits inside a PyTorch checkpoint.
struct StateDictKeyOption: ParsableArguments {
    @Option(help: "Dotted path of the state dict inside a PyTorch checkpoint (default: found automatically).")
    var key: String?
}
