import XCTest
@testable import WconvFormats
import WconvTensor

/// Plain HDF5 files (h5py, not Keras) import as a weights-only bundle named by dataset path.
final class HDF5PlainTests: XCTestCase {
    func testEveryDtypeExactly() throws {
        let bundle = try KerasReader.read(path: KerasFixtures.path("plain.h5"))
        XCTAssertEqual(bundle.format, "hdf5")
        let exp = try KerasFixtures.expected("plain")
        let tensors = KerasFixtures.tensors(exp["tensors"])
        XCTAssertEqual(Set(bundle.tensors.keys), Set(tensors.keys))
        let dtypes: [String: DType] = ["float32": .f32, "float64": .f64, "float16": .f16, "int8": .i8, "int16": .i16,
                                       "int32": .i32, "int64": .i64, "uint8": .u8]
        for (k, e) in tensors {
            let t = try XCTUnwrap(bundle.tensors[k], k)
            XCTAssertEqual(t.shape, e.shape, k)
            XCTAssertEqual(t.dtype, dtypes[e.dtype], k)
            if let ints = e.ints {
                // int64 beyond 2^53 must survive exactly: compare the raw integers.
                let got: [Int64] = t.withContiguousBytes { raw in
                    switch t.dtype {
                    case .i64: return Array(raw.bindMemory(to: Int64.self))
                    case .i32: return raw.bindMemory(to: Int32.self).map(Int64.init)
                    case .i16: return raw.bindMemory(to: Int16.self).map(Int64.init)
                    case .i8: return raw.bindMemory(to: Int8.self).map(Int64.init)
                    default: return raw.bindMemory(to: UInt8.self).map(Int64.init)
                    }
                }
                XCTAssertEqual(got, ints, k)
            } else {
                XCTAssertEqual(t.doubles(), e.values, k)
            }
        }
        // The string dataset is skipped with a warning naming it.
        XCTAssertTrue(bundle.warnings.contains { $0.contains("notes") }, "\(bundle.warnings)")
        // Name order, depth first.
        XCTAssertEqual(Array(bundle.tensors.keys).first, "big_endian")
    }

    func testScalarAndBigEndian() throws {
        let b = try KerasReader.read(path: KerasFixtures.path("plain.h5"))
        XCTAssertEqual(b.tensors["scalar"]?.shape, [])
        XCTAssertEqual(b.tensors["scalar"]?.floats(), [2.5])
        XCTAssertEqual(b.tensors["big_endian"]?.floats(), [0, 1, 2, 3, 4, 5])
    }

    func testInMemoryImageMatchesDisk() throws {
        let file = try MappedFile(path: KerasFixtures.path("small_legacy.h5"))
        let h5 = try H5File.open(image: file.buffer, name: "small_legacy.h5 (memory)", owner: file)
        let root = try h5.root()
        XCTAssertEqual(try root.stringAttribute("keras_version"), "3.15.1")
        let t = try root.dataset("model_weights/conv_a/small/conv_a/kernel").readTensor()
        let disk = try KerasReader.read(path: KerasFixtures.path("small_legacy.h5")).tensors["conv_a/kernel"]!
        XCTAssertTrue(t.bitwiseEqual(disk))
    }

    func testErrorsNameThePath() throws {
        let h5 = try H5File.open(path: KerasFixtures.path("plain.h5"))
        let root = try h5.root()
        XCTAssertThrowsError(try root.dataset("encoder/nope")) { e in
            XCTAssertTrue("\(e)".contains("/encoder/nope"), "\(e)")
            XCTAssertEqual((e as? WconvError)?.exitCode, 3)
        }
        XCTAssertThrowsError(try root.dataset("notes").readTensor()) { e in
            XCTAssertTrue("\(e)".contains("/notes"), "\(e)")
        }
        // HDF5's own stack text is carried into the message; nothing is printed to stderr.
        XCTAssertThrowsError(try H5File.open(path: KerasFixtures.path("broken_truncated.h5"))) { e in
            XCTAssertTrue("\(e)".contains("HDF5:"), "\(e)")
        }
    }
}
