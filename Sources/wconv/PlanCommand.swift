import ArgumentParser
import Wconv

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Prints the resolved training plan.")

    func run() throws {
        throw WconvError(.runtime, "'wconv plan' is not available in this build yet")
    }
}
