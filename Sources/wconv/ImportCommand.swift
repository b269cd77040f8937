import ArgumentParser
import Wconv

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Reads any supported file and writes the canonical model.")

    func run() throws {
        throw WconvError(.runtime, "'wconv import' is not available in this build yet")
    }
}
