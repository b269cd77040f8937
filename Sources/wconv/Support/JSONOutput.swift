import Wconv

/// Prints a `--json` document on stdout followed by a newline. Every command's JSON goes through
/// here: members in the order the command (or the report type) lists them, dictionaries sorted,
/// non-finite numbers as "nan" / "inf" strings (docs/cli-json.md).
func printJSON(_ doc: JSONValue) {
    print(doc.text(.pretty))
}

/// Prints a report type through `printJSON`, members in its declaration order.
func printJSON<T: Encodable>(encoding report: T) throws {
    printJSON(try JSONValue(encoding: report))
}
