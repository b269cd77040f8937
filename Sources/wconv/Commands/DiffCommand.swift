import ArgumentParser
import Foundation
import Wconv

/// `wconv diff A B`: tensor-by-tensor comparison across any two supported files. A is the reference:
/// names only in A are "missing" from B, names only in B are "unexpected". Exit 4 when they differ.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff", abstract: "Compares two files tensor by tensor.",
        discussion: "Values match when |a - b| <= atol + rtol * |b| element-wise (NaN matches NaN). Exit status 0 when everything matches, 4 when anything differs.")

    @Argument(help: "Reference model file.") var a: String
    @Argument(help: "Model file compared against it.") var b: String
    @Option(help: "Absolute tolerance.") var atol: Double = 0
    @Option(help: "Relative tolerance.") var rtol: Double = 0
    @OptionGroup var checkpoint: StateDictKeyOption
    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("--atol and --rtol must be finite and non-negative")
        }
    }

    func run() throws {
        // --key applies to whichever of the two files is a PyTorch checkpoint.
        let ka = try ModelFile.sniff(path: a).isPyTorch ? checkpoint.key : nil
        let kb = try ModelFile.sniff(path: b).isPyTorch ? checkpoint.key : nil
        let ba = try ModelFile.load(path: a, key: ka)
        let bb = try ModelFile.load(path: b, key: kb)
        let result = TensorDiff.compare(ba, bb, atol: atol, rtol: rtol)
        if stdout.json {
            printJSON(result.json(a: a, b: b, atol: atol, rtol: rtol))
        } else {
            print(result.text(a: a, b: b))
        }
        if !result.equal {
            throw WconvError(.difference, "\(a) and \(b) differ: \(result.summary)")
        }
    }
}
