import Foundation
import WconvFormats
import WconvTensor

/// The tokenizer files of a Hugging Face model folder.
public struct TokenizerFiles: Sendable, Equatable {
    public var directory: String
    /// `tokenizer.json` (HF `tokenizers`' whole pipeline), preferred when present.
    public var tokenizerJSON: String?
    /// `vocab.txt`, used when there is no tokenizer.json.
    public var vocabTxt: String?
    /// `tokenizer_config.json` (transformers' options: lower-casing, maximum length, …).
    public var tokenizerConfig: String?
    /// `special_tokens_map.json` (names of `[CLS]`, `[SEP]`, …; overrides tokenizer_config.json).
    public var specialTokensMap: String?

    /// Finds the files for `model`: a model folder, or a file inside one (model.safetensors,
    /// pytorch_model.bin, …) with the tokenizer files beside it.
    public static func locate(_ model: String) throws -> TokenizerFiles {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw WconvError(.usage, "no such file or folder", file: model)
        }
        let dir = isDirectory.boolValue ? model : (model as NSString).deletingLastPathComponent
        let folder = dir.isEmpty ? "." : dir
        func file(_ name: String) -> String? {
            let p = (folder as NSString).appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: p) ? p : nil
        }
        let files = TokenizerFiles(directory: folder, tokenizerJSON: file("tokenizer.json"), vocabTxt: file("vocab.txt"),
                                   tokenizerConfig: file("tokenizer_config.json"), specialTokensMap: file("special_tokens_map.json"))
        guard files.tokenizerJSON != nil || files.vocabTxt != nil else {
            throw WconvError.invalid("no tokenizer in \(folder): expected tokenizer.json, or vocab.txt with tokenizer_config.json, beside the model (as save_pretrained writes them)", file: model)
        }
        return files
    }
}

/// Reads a JSON file through the project's parser, refusing invalid UTF-8 anywhere in it.
func readJSONFile(_ path: String, what: String) throws -> JSONValue {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw WconvError(.invalidInput, "cannot read \(what): \(error.localizedDescription)", file: path)
    }
    return try data.withUnsafeBytes { raw in
        guard String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw WconvError.invalid("\(what) is not valid UTF-8", file: path)
        }
        return try JSONValue.parse(raw, what: what, file: path)
    }
}
