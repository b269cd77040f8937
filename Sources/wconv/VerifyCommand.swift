import ArgumentParser
import Wconv

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Runs two models on the same inputs and compares outputs.")

    func run() throws {
        throw WconvError(.runtime, "'wconv verify' is not available in this build yet")
    }
}
