import ArgumentParser
import Wconv

struct BenchRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run")

    func run() throws {
        throw WconvError(.runtime, "'wconv bench run' is not available in this build yet")
    }
}
