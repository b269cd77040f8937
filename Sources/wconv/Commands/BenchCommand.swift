import ArgumentParser
import Wconv

/// `wconv bench import|run|train|conv`: timings reported for comparison with PyTorch (tools/bench).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measures import, inference and training speed.",
        subcommands: [BenchImportCommand.self, BenchRunCommand.self, BenchTrainCommand.self, BenchConvCommand.self])
}
