import ArgumentParser
import Wconv

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "Converts between formats.")

    func run() throws {
        throw WconvError(.runtime, "'wconv convert' is not available in this build yet")
    }
}
