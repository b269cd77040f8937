import ArgumentParser
import Wconv

struct BenchImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import")

    func run() throws {
        throw WconvError(.runtime, "'wconv bench import' is not available in this build yet")
    }
}
