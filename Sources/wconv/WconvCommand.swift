import ArgumentParser
import Foundation
import Wconv

/// The `wconv` root command. Each subcommand lives in its own file.
@main
struct WconvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wconv",
        abstract: "Transfer learning without Python: read any weights, fine-tune on the CPU, export anywhere.",
        version: wconvVersion,
        subcommands: [
            InspectCommand.self, ImportCommand.self, ConvertCommand.self, DiffCommand.self,
            RunCommand.self, VerifyCommand.self, PlanCommand.self, FinetuneCommand.self,
            EvalCommand.self, BenchCommand.self,
        ]
    )

    /// Entry point: the one place where errors become messages and exit codes (design.md §4).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as WconvError {
            FileHandle.standardError.write(Data("wconv: error: \(error.description)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch {
            exit(withError: error)
        }
    }
}
