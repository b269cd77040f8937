import ArgumentParser
import Wconv

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Compares two files tensor by tensor.")

    func run() throws {
        throw WconvError(.runtime, "'wconv diff' is not available in this build yet")
    }
}
