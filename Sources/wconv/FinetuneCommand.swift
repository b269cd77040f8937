import ArgumentParser
import Wconv

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "finetune", abstract: "Fine-tunes a model on a labelled dataset.")

    func run() throws {
        throw WconvError(.runtime, "'wconv finetune' is not available in this build yet")
    }
}
