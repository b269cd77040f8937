import ArgumentParser
import Foundation
import Wconv

/// `wconv convert IN OUT`: rewrites weights in another format, names and values preserved exactly
/// unless a rename, prefix strip or dtype is asked for; every change is reported.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "Converts between formats.",
        discussion: """
        Examples:
          wconv convert model.pth model.safetensors
          wconv convert ckpt.pt weights.safetensors --key model --strip-prefix auto
          wconv convert model.safetensors model.pth --rename 's/^backbone\\./encoder./' --dtype f16
          wconv convert big.pth out/model.safetensors --max-shard-size 2GB
        """)

    @Argument(help: "Input model file (any supported format, sniffed from the bytes).") var input: String
    @Argument(help: "Output file. Its extension picks the format unless --to is given.") var output: String
    @Option(help: "Output format: safetensors, pth, onnx or h5.") var to: String?
    @Option(help: "Convert floating-point tensors to f32, f16 or bf16 (integers are left alone).") var dtype: String?
    @Option(help: "sed-style rename rule applied to every name, in order (repeatable), e.g. 's/^module\\.//'.") var rename: [String] = []
    @Option(name: .customLong("strip-prefix"), help: "'auto' strips a wrapper prefix common to all names (module., model., _orig_mod., …); any other value is stripped literally.") var stripPrefix: String?
    @OptionGroup var checkpoint: StateDictKeyOption
    @Option(name: .customLong("max-shard-size"), help: "Write safetensors shards of at most this size plus an index, e.g. 2GB or 500MB.") var maxShardSize: String?
    @OptionGroup var stdout: JSONFlag

    /// The flags as plain values.
    var job: ConvertJob {
        ConvertJob(input: input, output: output, to: to, dtype: dtype, rename: rename, stripPrefix: stripPrefix,
                   key: checkpoint.key, maxShardSize: maxShardSize, json: stdout.json)
    }

    func validate() throws { try usageCheck { _ = try job.settings() } }

    func run() throws { try job.run() }
}
