import Foundation
import WconvFormats
import WconvTensor

/// A labelled image list in a CSV (CheXpert's layout): a `path` column (relative to the CSV's
/// folder, or absolute) and label columns.
///
/// - One label column (`path,label`): an ordinary single-label dataset; the classes are the
///   column's distinct values sorted by code point (as ImageFolder sorts folders).
/// - Two or more: multi-label, one column per label holding `1`, `0`, `-1` (uncertain) or empty
///   (not mentioned, read as 0), in any numeric spelling (`1.0`, `-1.0`). `labels` are all 0 and the
///   targets are in `multiLabelTargets`.
///
/// Every image is checked to exist, and every value to be one of those, before anything trains:
/// problems are reported together, each with the CSV line and column.
public struct CSVDataset: LabelledDataset {
    public let csvPath: String
    public let files: [String]
    /// CSV line of each sample, for messages.
    public let lines: [Int]
    public let classes: [String]
    public let labels: [Int]
    public let multiLabelTargets: [Float]?

    /// - Parameters:
    ///   - fixed: the training set's classes (label columns, or class names) when reading a
    ///     validation CSV; label columns are matched by name and reordered to that order.
    ///   - multiLabel: whether the training set is multi-label (a validation CSV must agree).
    public init(path: String, classes fixed: [String]? = nil, multiLabel expected: Bool? = nil) throws {
        csvPath = path
        let table = try CSVTable.read(path: path)
        let header = table.header.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let pathCol = header.firstIndex(where: { $0.lowercased() == "path" }) else {
            throw WconvError(.invalidInput, "no 'path' column in the header (\(header.joined(separator: ","))); expected path,<label> (single-label) or path,<finding>,<finding>,… (multi-label)", file: path)
        }
        let labelCols = header.indices.filter { $0 != pathCol }
        guard !labelCols.isEmpty else { throw WconvError(.invalidInput, "only a 'path' column: add a label column (path,label) or one column per finding", file: path) }
        if let dup = Dictionary(grouping: labelCols, by: { header[$0] }).first(where: { $0.value.count > 1 }) {
            throw WconvError(.invalidInput, "column '\(dup.key)' appears \(dup.value.count) times in the header", file: path)
        }
        guard !table.rows.isEmpty else { throw WconvError(.invalidInput, "the CSV has a header but no rows", file: path) }
        let folder = (path as NSString).deletingLastPathComponent
        var files: [String] = [], missing: [String] = []
        for (k, row) in table.rows.enumerated() {
            let rel = row[pathCol].trimmingCharacters(in: .whitespaces)
            let line = table.lines[k]
            guard !rel.isEmpty else { missing.append("line \(line): empty path"); files.append(""); continue }
            let full = rel.hasPrefix("/") ? rel : (folder.isEmpty ? rel : folder + "/" + rel)
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: full, isDirectory: &isDir) || isDir.boolValue {
                missing.append("line \(line): \(full)\(isDir.boolValue ? " is a directory" : " not found")")
            }
            files.append(full)
        }
        if !missing.isEmpty {
            throw WconvError(.invalidInput, "\(missing.count) of \(table.rows.count) rows name no image (paths are relative to the CSV's folder \(folder.isEmpty ? "." : folder)):\n  " + CSVDataset.listed(missing), file: path)
        }
        self.files = files
        lines = table.lines

        if let expected, expected != (labelCols.count >= 2) {
            throw WconvError(.invalidInput, expected
                ? "the training set is multi-label (\(fixed?.count ?? 0) label columns) but this CSV has one label column ('\(header[labelCols[0]])')"
                : "the training set is single-label but this CSV has \(labelCols.count) label columns (multi-label)", file: path)
        }
        if labelCols.count == 1 {
            // Single-label: class names from the one column.
            let col = labelCols[0]
            var values: [String] = [], empty: [String] = []
            for (k, row) in table.rows.enumerated() {
                let v = row[col].trimmingCharacters(in: .whitespaces)
                if v.isEmpty { empty.append("line \(table.lines[k])") }
                values.append(v)
            }
            if !empty.isEmpty {
                throw WconvError(.invalidInput, "column '\(header[col])' is empty on \(empty.count) rows (\(empty.prefix(10).joined(separator: ", "))); a single-label CSV needs a class on every row", file: path)
            }
            let found = Set(values).sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            if let fixed {
                let unknown = found.filter { !fixed.contains($0) }
                guard unknown.isEmpty else {
                    throw WconvError(.invalidInput, "class(es) \(unknown.joined(separator: ", ")) in column '\(header[col])' are not among the training classes \(fixed.joined(separator: ", "))", file: path)
                }
            } else if found.count < 2 {
                throw WconvError(.invalidInput, "column '\(header[col])' holds one class ('\(found.first ?? "")'): a classifier needs at least two", file: path)
            }
            let cls = fixed ?? found
            classes = cls
            labels = values.map { cls.firstIndex(of: $0)! }
            multiLabelTargets = nil
            return
        }

        // Multi-label: columns in the training set's order when given.
        var order = labelCols
        if let fixed {
            let names = labelCols.map { header[$0] }
            let absent = fixed.filter { !names.contains($0) }, extra = names.filter { !fixed.contains($0) }
            guard absent.isEmpty, extra.isEmpty else {
                throw WconvError(.invalidInput, "label columns differ from the training set's (\(fixed.joined(separator: ", "))): \(absent.isEmpty ? "" : "missing \(absent.joined(separator: ", "))")\(absent.isEmpty || extra.isEmpty ? "" : "; ")\(extra.isEmpty ? "" : "not in training \(extra.joined(separator: ", "))")", file: path)
            }
            order = fixed.map { f in labelCols.first { header[$0] == f }! }
        }
        let L = order.count
        var targets = [Float](repeating: 0, count: table.rows.count * L)
        var bad: [String] = []
        for (k, row) in table.rows.enumerated() {
            for (j, col) in order.enumerated() {
                guard let v = CSVDataset.labelValue(row[col]) else {
                    bad.append("line \(table.lines[k]), column '\(header[col])': '\(row[col])'")
                    continue
                }
                targets[k * L + j] = v
            }
        }
        if !bad.isEmpty {
            throw WconvError(.invalidInput, "\(bad.count) label value(s) are not 1, 0, -1 (uncertain) or empty (not mentioned); fix them, or remove columns that are not labels:\n  " + CSVDataset.listed(bad), file: path)
        }
        classes = order.map { header[$0] }
        labels = [Int](repeating: 0, count: table.rows.count)
        multiLabelTargets = targets
    }

    /// 1, 0, −1 in any numeric spelling, or empty (→ 0); nil for anything else.
    static func labelValue(_ raw: String) -> Float? {
        let s = raw.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{2212}", with: "-")
        if s.isEmpty { return 0 }
        guard let d = Double(s), d == 1 || d == 0 || d == -1 else { return nil }
        return Float(d)
    }

    static func listed(_ items: [String]) -> String {
        items.prefix(20).joined(separator: "\n  ") + (items.count > 20 ? "\n  … and \(items.count - 20) more" : "")
    }

    public var count: Int { files.count }
    public func describe(_ i: Int) -> String { "\((csvPath as NSString).lastPathComponent) line \(lines[i]) (\(files[i]))" }
    public func load(_ i: Int) throws -> RawSample { .image(try ImageDecoder.decode(path: files[i])) }
}
