import ArgumentParser
import Wconv

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Runs a model on inputs.")

    func run() throws {
        throw WconvError(.runtime, "'wconv run' is not available in this build yet")
    }
}
