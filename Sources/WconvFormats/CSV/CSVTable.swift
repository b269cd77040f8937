import Foundation
import WconvTensor

/// Delimited text (CSV, TSV): the one reader for the label CSVs of `--data train.csv` and the
/// text datasets of WconvText.
///
/// Why not a package: the two CSV libraries at hand are lenient exactly where a training set must
/// not be. yaslab/CSV.swift 2.5.2 accepts an unterminated quote (the rest of the file becomes one
/// field) and text after a closing quote; swiftcsv/SwiftCSV 0.10.0 drops an empty last field on a
/// final line without a line break (`img.png,1,` loses a label column), strips leading spaces from
/// unquoted fields (file names), and its errors carry no position. A silently shifted column would
/// train on wrong labels, so this reader refuses malformed input with the line it is on.
///
/// Always: a UTF-8 byte-order mark is dropped; fields split on the delimiter; a field in double
/// quotes may hold delimiters, line breaks and `""` for a quote; records end at LF or CRLF; a missing
/// final line break is fine; blank lines are skipped; an unterminated quote is refused. What else is
/// refused depends on the `Dialect`.
public struct CSVTable: Sendable {
    /// How strictly quotes and line ends are read: start from a preset and change what differs.
    public struct Dialect: Sendable {
        /// The field separator: `,` or a tab.
        public var delimiter: UInt8
        /// Refuse a quote inside a field that does not start with one and text after a closing
        /// quote (RFC 4180). Off, they are text, as Python's `csv` module reads them.
        public var refusesStrayQuotes: Bool
        /// A lone CR ends a record (old Mac line ends). Off, it is part of the field.
        public var carriageReturnEndsRecord: Bool

        /// RFC 4180 read strictly: the label CSVs, where a shifted column trains on wrong labels.
        public static let strict = Dialect(delimiter: 0x2C, refusesStrayQuotes: true, carriageReturnEndsRecord: true)
        /// As Python's `csv.reader` (with `newline=""` files) reads text data: comma or tab separated.
        public static func python(delimiter: UInt8) -> Dialect {
            Dialect(delimiter: delimiter, refusesStrayQuotes: false, carriageReturnEndsRecord: false)
        }
    }

    /// One record and the 1-based line it starts on.
    public struct Record: Sendable, Equatable {
        public var fields: [String]
        public var line: Int
    }

    public var header: [String]
    public var rows: [[String]]
    /// Line number (1-based) where each row starts, for messages.
    public var lines: [Int]

    public init(header: [String], rows: [[String]], lines: [Int]) {
        self.header = header
        self.rows = rows
        self.lines = lines
    }

    /// Reads a label CSV (`Dialect.strict`, every row as wide as the header).
    public static func read(path: String) throws -> CSVTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WconvError(.invalidInput, "cannot read the CSV file", file: path)
        }
        do { return try parse(data) } catch let e as WconvError { throw e.inFile(path) }
    }

    /// Parses a label CSV's bytes (`Dialect.strict`); the first record is the header, and every row
    /// must have as many fields as it.
    public static func parse(_ data: Data) throws -> CSVTable {
        let bytes = [UInt8](data)
        guard String(validating: bytes, as: UTF8.self) != nil else { throw WconvError.invalid("the CSV is not valid UTF-8") }
        let records = try CSVTable.records(bytes, dialect: .strict)
        guard let header = records.first?.fields else { throw WconvError.invalid("the CSV is empty (expected a header row: path,<label>,…)") }
        for (k, r) in records.enumerated().dropFirst() where r.fields.count != header.count {
            throw WconvError.invalid("line \(r.line) (row \(k + 1)): \(r.fields.count) fields but the header has \(header.count); every row needs one value per column (leave a label empty for 'not mentioned')")
        }
        return CSVTable(header: header, rows: records.dropFirst().map(\.fields), lines: records.dropFirst().map(\.line))
    }

    /// Every record of `bytes` (UTF-8, already validated by the caller) in order, the header
    /// included; field counts are the caller's to check. Errors name `file` when given.
    public static func records(_ bytes: [UInt8], dialect: Dialect, file: String? = nil) throws -> [Record] {
        let quote: UInt8 = 0x22, cr: UInt8 = 0x0D, lf: UInt8 = 0x0A
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1, quoteLine = 1
        // fieldQuoted: the current field opened with a quote; afterQuote: and that quote has closed.
        var inQuotes = false, fieldQuoted = false, afterQuote = false
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldQuoted = false
            afterQuote = false
        }
        func endRecord() {
            // A blank line is one empty, unquoted field: skipped, not a record.
            let blank = fields.isEmpty && field.isEmpty && !fieldQuoted
            endField()
            if !blank { records.append(Record(fields: fields, line: recordLine)) }
            fields.removeAll()
        }
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            let lfNext = i < bytes.count && bytes[i] == lf
            if inQuotes {
                if c == quote {
                    if i < bytes.count && bytes[i] == quote { field.append(quote); i += 1 } else { inQuotes = false; afterQuote = true }
                } else {
                    field.append(c)
                    if c == lf || (c == cr && dialect.carriageReturnEndsRecord && !lfNext) { line += 1 }
                }
                continue
            }
            switch c {
            case dialect.delimiter:
                endField()
            case cr where lfNext:
                break  // the LF that follows ends the record
            case lf, cr where dialect.carriageReturnEndsRecord:
                endRecord()
                line += 1
                recordLine = line
            case quote where field.isEmpty && !fieldQuoted:
                inQuotes = true
                fieldQuoted = true
                quoteLine = line
            case quote where dialect.refusesStrayQuotes:
                throw WconvError.invalid("line \(line): a quote inside a field that does not start with one; quote the whole field and double inner quotes (\"\")", file: file)
            default:
                if afterQuote && dialect.refusesStrayQuotes {
                    throw WconvError.invalid("line \(line): text after a closing quote; quote the whole field", file: file)
                }
                field.append(c)
            }
        }
        if inQuotes {
            throw WconvError.invalid("line \(quoteLine): a quoted field is never closed (a \" without its closing \")", file: file)
        }
        if fieldQuoted || !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
