import WconvTensor

/// CSV and TSV records as RFC 4180 and Python's `csv` module read them: fields split on the
/// delimiter; a field in double quotes may hold delimiters, line breaks and `""` for a quote;
/// records end at LF or CRLF; blank lines are skipped.
enum DelimitedText {
    struct Record {
        var fields: [String]
        /// The 1-based line the record starts on.
        var line: Int
    }

    /// Parses `bytes` (already checked to be UTF-8) into records.
    static func records(_ bytes: [UInt8], delimiter: UInt8, file: String) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1, recordLine = 1
        var i = 0
        var inQuotes = false, quoteLine = 0, fieldWasQuoted = false, recordHadQuotes = false
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            fieldWasQuoted = false
        }
        func endRecord() {
            endField()
            // A blank line is one empty, unquoted field: skipped.
            if !(fields.count == 1 && fields[0].isEmpty && !recordHadQuotes) {
                records.append(Record(fields: fields, line: recordLine))
            }
            fields.removeAll()
            recordHadQuotes = false
        }
        while i < bytes.count {
            let c = bytes[i]
            if inQuotes {
                if c == 0x22 {
                    if i + 1 < bytes.count && bytes[i + 1] == 0x22 { field.append(0x22); i += 2; continue }
                    inQuotes = false
                } else {
                    if c == 0x0A { line += 1 }
                    field.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case 0x22 where field.isEmpty && !fieldWasQuoted:
                inQuotes = true
                fieldWasQuoted = true
                recordHadQuotes = true
                quoteLine = line
            case delimiter:
                endField()
            case 0x0D where i + 1 < bytes.count && bytes[i + 1] == 0x0A:
                break  // the LF that follows ends the record
            case 0x0A:
                endRecord()
                line += 1
                recordLine = line
            default:
                field.append(c)
            }
            i += 1
        }
        if inQuotes {
            throw WconvError.invalid("line \(quoteLine): a quoted field is never closed (a \" without its closing \")", file: file)
        }
        if !field.isEmpty || !fields.isEmpty || recordHadQuotes { endRecord() }
        return records
    }
}
