import ArgumentParser
import Wconv

/// Runs a command's argument checks inside `validate()`: a usage `WconvError` becomes
/// ArgumentParser's `ValidationError`, which prints the message with the command's usage line and
/// exits 2 (`WconvCommand.main`), before any file is read.
func usageCheck(_ checks: () throws -> Void) throws {
    do { try checks() } catch let e as WconvError where e.kind == .usage { throw ValidationError(e.description) }
}
