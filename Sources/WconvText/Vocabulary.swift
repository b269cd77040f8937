import Foundation
import WconvTensor

/// A tokenizer's token ↔ id table.
///
/// Tokens are keyed by their UTF-8 bytes, not by `String`: Swift compares strings by canonical
/// equivalence, so "é" (U+00E9) and "e" + U+0301 would be one key, where Hugging Face keeps two
/// tokens with two ids.
public struct Vocabulary: Sendable {
    private var idsByToken: [[UInt8]: Int] = [:]
    private var tokensById: [Int: String] = [:]

    /// Builds the table from (token, id) pairs; a repeated token keeps its last id, as HF's
    /// dictionaries do.
    public init<S: Sequence>(_ entries: S) where S.Element == (String, Int) {
        for (token, id) in entries {
            idsByToken[Array(token.utf8)] = id
            tokensById[id] = token
        }
    }

    /// The number of distinct tokens.
    public var count: Int { idsByToken.count }
    /// One more than the largest id (the id a new added token gets).
    public var nextFreeId: Int { (tokensById.keys.max() ?? -1) + 1 }

    public func id(for token: String) -> Int? { idsByToken[Array(token.utf8)] }
    func id(utf8 token: [UInt8]) -> Int? { idsByToken[token] }
    public func token(for id: Int) -> String? { tokensById[id] }

    mutating func add(_ token: String, id: Int) {
        idsByToken[Array(token.utf8)] = id
        tokensById[id] = token
    }

    /// Reads a BERT `vocab.txt`: one token per line, the id is the line number from 0.
    public static func read(vocabTxt path: String) throws -> Vocabulary {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw WconvError(.invalidInput, "cannot read the vocabulary: \(error.localizedDescription)", file: path)
        }
        var entries: [(String, Int)] = []
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            var line = data[start..<end]
            if line.last == 0x0D { line = line.dropLast() }  // a vocabulary written with CRLF line ends
            guard let token = String(validating: line, as: UTF8.self) else {
                throw WconvError.invalid("line \(lineNumber + 1) is not valid UTF-8; a vocab.txt holds one UTF-8 token per line", file: path)
            }
            entries.append((token, lineNumber))
            lineNumber += 1
            start = end == data.endIndex ? end : data.index(after: end)
        }
        guard !entries.isEmpty else { throw WconvError.invalid("the vocabulary is empty", file: path) }
        return Vocabulary(entries)
    }
}
