import ArgumentParser
import Wconv

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Lists every tensor of a model file.")

    func run() throws {
        throw WconvError(.runtime, "'wconv inspect' is not available in this build yet")
    }
}
