import Foundation

extension ImageDecoder {
    /// Width and height from a PNG's IHDR or a JPEG's SOF marker, reading only the first 64 KB:
    /// what `plan` needs to report a dataset's image sizes without decoding every image. Nil when
    /// the header is not one of those (the caller decodes instead).
    public static func dimensions(path: String) -> (width: Int, height: Int)? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let d = try? h.read(upToCount: 1 << 16) else { return nil }
        return dimensions([UInt8](d))
    }

    static func dimensions(_ b: [UInt8]) -> (width: Int, height: Int)? {
        func be(_ i: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 << 8 | Int(b[i + $1]) } }
        if b.count >= 24, b.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), b[12..<16].elementsEqual("IHDR".utf8) {
            return (be(16, 4), be(20, 4))
        }
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var i = 2
        while i + 9 < b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF { i += 1; continue }                       // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            let len = be(i + 2, 2)
            // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                return (be(i + 7, 2), be(i + 5, 2))
            }
            guard len >= 2 else { return nil }
            i += 2 + len
        }
        return nil
    }
}
