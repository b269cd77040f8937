import Wconv

/// Parses sizes such as `2GB`, `500MB`, `1.5GiB`, `4096` (bytes). Decimal units (KB, MB, GB, TB)
/// are powers of 1000 as huggingface_hub uses them; binary units (KiB, MiB, GiB, TiB) powers of 1024.
enum SizeParsing {
    static func parse(_ text: String, option: String) throws -> Int {
        let s = text.trimmingCharacters(in: .whitespaces)
        var numberEnd = s.startIndex
        while numberEnd < s.endIndex, s[numberEnd].isNumber || s[numberEnd] == "." { numberEnd = s.index(after: numberEnd) }
        let unit = s[numberEnd...].trimmingCharacters(in: .whitespaces).uppercased()
        guard let value = Double(s[..<numberEnd]), value > 0 else {
            throw WconvError(.usage, "\(option) \(text): expected a positive size such as 2GB, 500MB or 1GiB")
        }
        let multipliers: [String: Double] = [
            "": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
            "KIB": 1024, "MIB": 1_048_576, "GIB": 1_073_741_824, "TIB": 1_099_511_627_776,
        ]
        guard let m = multipliers[unit] else {
            throw WconvError(.usage, "\(option) \(text): unknown unit \"\(unit)\" (use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)")
        }
        let bytes = value * m
        guard bytes >= 1, bytes < 9e18 else { throw WconvError(.usage, "\(option) \(text): size out of range") }
        return Int(bytes)
    }
}
