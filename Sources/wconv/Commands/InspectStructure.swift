import Foundation
import Wconv

/// What `inspect` adds for Keras files: the layer table. (ONNX files report IR, opset, producer,
/// inputs/outputs and the op histogram through the reader's extras.)
enum InspectStructure {
    struct Section {
        var lines: [String]
        var json: JSONValue
    }

    static func section(file: String, format: FileFormat) throws -> Section? {
        switch format {
        case .kerasH5, .kerasZip:
            let model = try KerasReader.readModel(path: file)
            let rows = model.layerTable
            guard !rows.isEmpty else { return nil }
            var lines = ["layers (\(rows.count)):"]
            let nameWidth = min(40, max(12, rows.map(\.name.count).max() ?? 12))
            let classWidth = max(10, rows.map(\.className.count).max() ?? 10)
            for r in rows {
                let shape = r.outputShape.map { "(" + $0.map { $0.map(String.init) ?? "None" }.joined(separator: ", ") + ")" } ?? "-"
                lines.append("  " + r.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + " "
                             + r.className.padding(toLength: classWidth, withPad: " ", startingAt: 0) + " "
                             + shape.padding(toLength: 22, withPad: " ", startingAt: 0) + " \(r.params)")
            }
            let json = JSONValue.object([
                ("kind", .string("keras")),
                ("layers", .array(rows.map { r in
                    .object([("name", .string(r.name)), ("class", .string(r.className)), ("params", .int(r.params)),
                             ("output_shape", r.outputShape.map { .array($0.map { $0.map { .int($0) } ?? .null }) } ?? .null)])
                })),
            ])
            return Section(lines: lines, json: json)
        default:
            return nil
        }
    }
}
