import ArgumentParser
import Wconv

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluates a classifier on a labelled dataset.")

    func run() throws {
        throw WconvError(.runtime, "'wconv eval' is not available in this build yet")
    }
}
