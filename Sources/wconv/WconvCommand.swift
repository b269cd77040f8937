import ArgumentParser
import Foundation
import Wconv

/// The `wconv` root command. Each subcommand lives in its own file.
@main
struct WconvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wconv",
        abstract: "Transfer learning without Python: read any weights, fine-tune on the CPU, export anywhere.",
        discussion: "Exit status: 0 success, 1 runtime failure, 2 bad usage, 3 input refused as invalid or unsafe, 4 a diff or verification found a difference.",
        subcommands: [
            InspectCommand.self, ImportCommand.self, ConvertCommand.self, DiffCommand.self,
            RunCommand.self, VerifyCommand.self, PlanCommand.self, FinetuneCommand.self,
            EvalCommand.self, CompareCommand.self, BenchCommand.self, TokenizeCommand.self,
        ]
    )

    @Flag(name: .long, help: "Show the version, the CPU's instruction sets and the BLAS kernels in use.")
    var version = false

    func run() throws {
        guard version else { throw CleanExit.helpRequest(self) }
        print("wconv \(wconvVersion)")
        print(KernelReport.lines(loadBLAS: true).joined(separator: "\n"))
    }

    /// Entry point: the one place where errors become messages and exit codes (design.md §4).
    static func main() {
        do {
            if let job = ConvertJob(plainArguments: Array(CommandLine.arguments.dropFirst())) {
                try job.run()
            } else {
                var command = try parseAsRoot()
                try command.run()
            }
            Console.rank?.finalize()
        } catch let error as WconvError {
            FileHandle.standardError.write(Data("wconv\(Console.tag): \(label(error.kind)): \(error.description)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch {
            // ArgumentParser's own outcomes: help/version (exit 0), usage errors from parsing or a
            // command's validate() (its EX_USAGE 64 becomes our 2, labelled like ours, with the
            // usage line), and anything else thrown from a command (1).
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            var message = fullMessage(for: error)
            if code == .validationFailure, message.hasPrefix("Error: ") {
                message = "wconv\(Console.tag): \(label(.usage)): " + message.dropFirst("Error: ".count)
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : 1)
        }
    }

    /// The word printed before the message, so users see at once whether to fix the call or the file.
    static func label(_ kind: WconvError.Kind) -> String {
        switch kind {
        case .usage: return "usage error"
        case .invalidInput: return "invalid input"
        case .unsafe: return "refused as unsafe"
        case .runtime: return "error"
        case .difference: return "difference"
        }
    }
}
