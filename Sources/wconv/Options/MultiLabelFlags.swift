import ArgumentParser
import Wconv

/// The multi-label training flags (used when `--data` is a CSV with two or more label columns).
struct MultiLabelFlags: ParsableArguments {
    @Option(name: .customLong("pos-weight"), help: "Multi-label: auto (neg/pos per label, torch's pos_weight) | none | w1,w2,… (one per label).") var posWeight: String = "none"
    @Option(help: "Multi-label: what an uncertain (-1) label trains as: ones (U-Ones) | zeros (U-Zeros) | ignore (U-Ignore: no loss term).") var uncertain: String = "ignore"

    func apply(to c: inout TrainingConfig) throws {
        guard let u = UncertainPolicy(rawValue: uncertain) else { throw WconvError(.usage, "--uncertain '\(uncertain)': use ones, zeros or ignore") }
        c.multiLabel = MultiLabelOptions(posWeight: posWeight, uncertain: u)
    }
}
