import Foundation
import WconvTensor

/// A strict RFC 4180 reader for the label CSVs of `--data train.csv`.
///
/// Why not a package: the two CSV libraries at hand are lenient exactly where a training set must
/// not be. yaslab/CSV.swift 2.5.2 accepts an unterminated quote (the rest of the file becomes one
/// field) and text after a closing quote; swiftcsv/SwiftCSV 0.10.0 drops an empty last field on a
/// final line without a line break (`img.png,1,` loses a label column), strips leading spaces from
/// unquoted fields (file names), and its errors carry no position. A silently shifted column would
/// train on wrong labels, so this reader refuses malformed input with the line it is on.
///
/// Accepted: a UTF-8 byte-order mark; fields separated by commas; quoted fields (`"a,b"`, `""` for a
/// quote, line breaks inside); records ending in CRLF, LF or CR; a missing final line break; blank
/// lines (skipped). Refused: a quote inside an unquoted field, text after a closing quote, an
/// unterminated quote, a record whose field count differs from the header's, invalid UTF-8.
public struct CSVTable {
    public var header: [String]
    public var rows: [[String]]
    /// Line number (1-based) where each row starts, for messages.
    public var lines: [Int]

    public init(header: [String], rows: [[String]], lines: [Int]) {
        self.header = header
        self.rows = rows
        self.lines = lines
    }

    public static func read(path: String) throws -> CSVTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WconvError(.invalidInput, "cannot read the CSV file", file: path)
        }
        do { return try parse(data) } catch let e as WconvError { throw e.inFile(path) }
    }

    /// Parses bytes; the first record is the header.
    public static func parse(_ data: Data) throws -> CSVTable {
        guard var text = String(data: data, encoding: .utf8) else { throw WconvError.invalid("the CSV is not valid UTF-8") }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        var records: [[String]] = [], starts: [Int] = []
        var field = "", record: [String] = []
        var line = 1, recordLine = 1
        var quoted = false, afterQuote = false, fieldStarted = false
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar?
        func endRecord() {
            record.append(field)
            // A blank line is one empty field: skipped, not a record.
            if !(record.count == 1 && record[0].isEmpty && !fieldStarted) { records.append(record); starts.append(recordLine) }
            record = []; field = ""; afterQuote = false; fieldStarted = false
        }
        while let c = pending ?? it.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let n = it.next()
                    if n == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; afterQuote = true; pending = n }
                } else {
                    if c == "\n" || c == "\r" { line += 1 }
                    field.unicodeScalars.append(c)
                    if c == "\r" {
                        let n = it.next()
                        if n == "\n" { field.unicodeScalars.append("\n") } else { pending = n }
                    }
                }
                continue
            }
            switch c {
            case ",":
                record.append(field); field = ""; afterQuote = false; fieldStarted = true
            case "\r", "\n":
                if c == "\r" { let n = it.next(); if n != "\n" { pending = n } }
                endRecord()
                line += 1
                recordLine = line
            case "\"":
                guard field.isEmpty, !afterQuote else {
                    throw WconvError.invalid("line \(line): a quote inside a field that does not start with one; quote the whole field and double inner quotes (\"\")")
                }
                quoted = true; fieldStarted = true
            default:
                if afterQuote { throw WconvError.invalid("line \(line): text after a closing quote; quote the whole field") }
                field.unicodeScalars.append(c); fieldStarted = true
            }
        }
        if quoted { throw WconvError.invalid("line \(recordLine): a quoted field is never closed (unterminated \")") }
        if fieldStarted || !field.isEmpty || !record.isEmpty { endRecord() }
        guard let header = records.first else { throw WconvError.invalid("the CSV is empty (expected a header row: path,<label>,…)") }
        for (k, r) in records.enumerated().dropFirst() where r.count != header.count {
            throw WconvError.invalid("line \(starts[k]) (row \(k + 1)): \(r.count) fields but the header has \(header.count); every row needs one value per column (leave a label empty for 'not mentioned')")
        }
        return CSVTable(header: header, rows: Array(records.dropFirst()), lines: Array(starts.dropFirst()))
    }
}
