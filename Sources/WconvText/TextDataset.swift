import Foundation
import WconvFormats
import WconvTensor

/// One labelled text (or text pair) from a data file.
public struct TextExample: Sendable, Equatable {
    public var text: String
    /// The second text of a pair, when the dataset has a pair column.
    public var pair: String?
    /// Index into the dataset's `classes`.
    public var label: Int
    /// The 1-based line of the file the example starts on (for messages).
    public var line: Int
}

/// Which columns (CSV/TSV header names, JSONL keys) hold the text, its optional second text and
/// the label.
public struct TextColumns: Sendable, Equatable {
    public var text: String
    public var label: String
    public var pair: String?

    public init(text: String = "text", label: String = "label", pair: String? = nil) {
        self.text = text
        self.label = label
        self.pair = pair
    }
}

/// The text data file layouts, chosen by extension.
public enum TextFileFormat: String, Sendable, CaseIterable {
    case csv, tsv, jsonl

    /// `.csv`; `.tsv` or `.tab`; `.jsonl` or `.ndjson`.
    public init(path: String) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": self = .csv
        case "tsv", "tab": self = .tsv
        case "jsonl", "ndjson": self = .jsonl
        default:
            throw WconvError(.usage, "cannot tell the text data format from the extension; use .csv, .tsv or .jsonl (one JSON object per line)", file: path)
        }
    }
}

/// A labelled text classification dataset read from CSV, TSV or JSONL.
///
/// CSV and TSV files start with a header row naming the columns; JSONL files hold one object per
/// line. Labels are class names (JSON numbers and booleans are taken as written). Refused, naming
/// the line: invalid UTF-8, a missing column or label, a row with a different number of fields
/// from the header, and a label outside `classes` when the class list is given (a validation file
/// read against its training classes).
public struct TextDataset: Sendable {
    public var path: String
    public var examples: [TextExample]
    /// Class names; a label is an index into this list.
    public var classes: [String]

    public var count: Int { examples.count }
    public var labels: [Int] { examples.map(\.label) }
    /// True when the examples have second texts.
    public var hasPairs: Bool { examples.first?.pair != nil }

    /// Reads `path`. Without `classes`, the classes are the label names found, sorted by code
    /// point (as Python's `sorted`); with them, labels map onto that list.
    public static func read(_ path: String, columns: TextColumns = TextColumns(), classes: [String]? = nil,
                            format: TextFileFormat? = nil) throws -> TextDataset {
        let format = try format ?? TextFileFormat(path: path)
        let bytes: [UInt8]
        do { bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw WconvError(.invalidInput, "cannot read the text data: \(error.localizedDescription)", file: path)
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        try checkUTF8(body, file: path)
        let rows: [(text: String, pair: String?, label: String, line: Int)]
        switch format {
        case .csv: rows = try delimitedRows(body, delimiter: 0x2C, columns: columns, file: path)
        case .tsv: rows = try delimitedRows(body, delimiter: 0x09, columns: columns, file: path)
        case .jsonl: rows = try jsonLines(body, columns: columns, file: path)
        }
        guard !rows.isEmpty else { throw WconvError.invalid("no examples in the file", file: path) }

        // Labels are compared by their exact scalars, as Python compares strings.
        let names = classes ?? Array(Set(rows.map(\.label))).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        var index: [[UInt8]: Int] = [:]
        for (i, name) in names.enumerated() { index[Array(name.utf8)] = i }
        let examples = try rows.map { row -> TextExample in
            guard let label = index[Array(row.label.utf8)] else {
                let known = names.prefix(20).map { "\"\($0)\"" }.joined(separator: ", ") + (names.count > 20 ? ", …" : "")
                throw WconvError.invalid("line \(row.line): label \"\(row.label)\" is not one of the \(names.count) training classes (\(known))", file: path)
            }
            return TextExample(text: row.text, pair: row.pair, label: label, line: row.line)
        }
        return TextDataset(path: path, examples: examples, classes: names)
    }

    /// Refuses invalid UTF-8, naming the first line that holds it.
    static func checkUTF8(_ bytes: [UInt8], file: String) throws {
        if String(validating: bytes, as: UTF8.self) != nil { return }
        var line = 1, start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            if String(validating: bytes[start..<i], as: UTF8.self) == nil {
                throw WconvError.invalid("line \(line) is not valid UTF-8; save the file as UTF-8", file: file)
            }
            line += 1
            start = i + 1
        }
    }

    private static func delimitedRows(_ bytes: [UInt8], delimiter: UInt8, columns: TextColumns, file: String) throws -> [(text: String, pair: String?, label: String, line: Int)] {
        let records = try CSVTable.records(bytes, dialect: .python(delimiter: delimiter), file: file)
        guard let header = records.first else { throw WconvError.invalid("the file is empty; it needs a header row naming the columns", file: file) }
        func column(_ name: String) throws -> Int {
            let matches = header.fields.indices.filter { header.fields[$0] == name }
            guard matches.count == 1 else {
                let what = matches.isEmpty ? "has no column \"\(name)\"" : "has \(matches.count) columns named \"\(name)\""
                throw WconvError.invalid("the header \(what); its columns are \(header.fields.map { "\"\($0)\"" }.joined(separator: ", ")). Name the columns with --text-column / --label-column", file: file)
            }
            return matches[0]
        }
        let t = try column(columns.text), l = try column(columns.label)
        let p = try columns.pair.map(column)
        return try records.dropFirst().map { r in
            guard r.fields.count == header.fields.count else {
                throw WconvError.invalid("line \(r.line) has \(r.fields.count) fields but the header has \(header.fields.count)", file: file)
            }
            guard !r.fields[l].isEmpty else { throw WconvError.invalid("line \(r.line) has an empty \"\(columns.label)\"", file: file) }
            return (r.fields[t], p.map { r.fields[$0] }, r.fields[l], r.line)
        }
    }

    private static func jsonLines(_ bytes: [UInt8], columns: TextColumns, file: String) throws -> [(text: String, pair: String?, label: String, line: Int)] {
        var rows: [(text: String, pair: String?, label: String, line: Int)] = []
        var line = 0, start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == 0x0A {
            line += 1
            defer { start = i + 1 }
            var slice = bytes[start..<i]
            if slice.last == 0x0D { slice = slice.dropLast() }
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let object: JSONValue
            do {
                object = try slice.withUnsafeBytes { try JSONValue.parse($0, what: "line \(line)", file: file) }
            } catch let e as WconvError {
                throw WconvError.invalid(e.message + " (JSONL holds one JSON object per line)", file: file)
            }
            guard object.object != nil else { throw WconvError.invalid("line \(line) is not a JSON object", file: file) }
            func text(_ key: String, required: Bool) throws -> String? {
                guard let v = object[key], !v.isNull else {
                    if required { throw WconvError.invalid("line \(line) has no \"\(key)\"", file: file) }
                    return nil
                }
                guard let s = v.string else { throw WconvError.invalid("line \(line): \"\(key)\" must be a string, not \(v.serialized)", file: file) }
                return s
            }
            guard let labelValue = object[columns.label], !labelValue.isNull else {
                throw WconvError.invalid("line \(line) has no \"\(columns.label)\"", file: file)
            }
            let label: String
            switch labelValue {
            case .string(let s): label = s
            case .int, .double, .bool: label = labelValue.serialized
            default: throw WconvError.invalid("line \(line): \"\(columns.label)\" must be a class name, not \(labelValue.serialized)", file: file)
            }
            guard !label.isEmpty else { throw WconvError.invalid("line \(line) has an empty \"\(columns.label)\"", file: file) }
            rows.append((try text(columns.text, required: true)!, try columns.pair.flatMap { try text($0, required: true) }, label, line))
        }
        return rows
    }
}
