import ArgumentParser
import Foundation
import Wconv

/// Overrides of the model's preprocessing metadata (for files that carry none, such as a bare .pth).
struct PreprocessingOptions: ParsableArguments {
    @Option(name: .customLong("input-size"), help: "Network input size (square) or auto: the data's native size below the default, rounded to the network's total stride (the default for models that record no preprocessing).") var inputSize: String?
    @Option(help: "Resize the shorter side to this before the center crop (0: resize straight to the input size).") var resize: Int?
    @Option(help: "Per-channel mean, e.g. 0.485,0.456,0.406 (on pixels scaled to [0,1]).") var mean: String?
    @Option(help: "Per-channel std, e.g. 0.229,0.224,0.225.") var std: String?

    func validate() throws { try usageCheck { _ = try request() } }

    func request() throws -> PreprocessingRequest {
        var r = PreprocessingRequest(resize: resize)
        if let s = inputSize {
            if s == "auto" { r.inputSize = .auto } else if let n = Int(s), n > 0 { r.inputSize = .fixed(n) } else {
                throw WconvError(.usage, "--input-size '\(s)': give a positive size in pixels or auto")
            }
        }
        func three(_ s: String, _ flag: String) throws -> [Double] {
            let v = s.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard v.count == 3 else { throw WconvError(.usage, "\(flag) needs three comma-separated numbers, got '\(s)'") }
            return v
        }
        if let m = mean { r.mean = try three(m, "--mean") }
        if let s = std { r.std = try three(s, "--std") }
        return r
    }
}
