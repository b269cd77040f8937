import ArgumentParser
import Wconv

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train")

    func run() throws {
        throw WconvError(.runtime, "'wconv bench train' is not available in this build yet")
    }
}
