import CWconvImage
import Foundation
import WconvTensor

/// An 8-bit interleaved RGB image (row-major, 3 bytes per pixel).
public struct RGBImage: Sendable {
    public var width: Int
    public var height: Int
    /// `height × width × 3` bytes.
    public var pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// PNG / JPEG decoding through libpng and libjpeg-turbo (the C file owns every longjmp).
/// Palette, gray, 16-bit (high byte, as PIL does for RGB16) and alpha (dropped, as PIL's
/// `convert("RGB")`) all come out as RGB8; CMYK/YCCK JPEGs are converted as PIL does.
public enum ImageDecoder {
    /// Decodes the file at `path`; errors name the file and say what is wrong with it.
    public static func decode(path: String) throws -> RGBImage {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw WconvError(.invalidInput, "cannot read image: \(error.localizedDescription)", file: path)
        }
        do { return try decode(data) } catch let e as WconvError { throw e.inFile(path) }
    }

    /// Decodes PNG or JPEG bytes.
    public static func decode(_ data: Data) throws -> RGBImage {
        var img = wconv_image()
        var message = [CChar](repeating: 0, count: 512)
        let rc: Int32 = data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress
            return wconv_image_decode(base, raw.count, &img, &message, message.count)
        }
        guard rc == 0, let px = img.pixels else {
            let text = String(cString: message)
            throw WconvError(.invalidInput, (text.isEmpty ? "image decode failed" : text) + "; re-save the image as PNG or JPEG or remove it from the dataset")
        }
        defer { wconv_image_free(&img) }
        let w = Int(img.width), h = Int(img.height)
        let pixels = [UInt8](UnsafeBufferPointer(start: px, count: w * h * 3))
        return RGBImage(width: w, height: h, pixels: pixels)
    }
}

/// PNG encoding (for reports, debugging dumps and test fixtures).
public enum PNGEncoder {
    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var len = 0
        var message = [CChar](repeating: 0, count: 512)
        let rc = image.pixels.withUnsafeBufferPointer { px in
            wconv_png_encode(px.baseAddress, Int32(image.width), Int32(image.height), &out, &len, &message, message.count)
        }
        guard rc == 0, let out else { throw WconvError(.runtime, String(cString: message)) }
        defer { free(out) }
        return [UInt8](UnsafeBufferPointer(start: out, count: len))
    }

    /// Encodes and writes atomically.
    public static func write(_ image: RGBImage, to path: String) throws {
        let bytes = try encode(image)
        let w = try AtomicFileWriter(path: path)
        try w.write(bytes)
        try w.commit()
    }
}
