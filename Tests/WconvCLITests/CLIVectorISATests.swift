import Foundation
import Wconv
import XCTest
import WconvTestSupport

/// wconv's C vector kernels (CWconvVector) at every ISA this CPU has, in the release binary, on models
/// whose activations run in place: SiLU in EfficientNet (v1 and v2), GELU in BERT. The unit tests run
/// a debug build, where the compiler does not vectorise those loops, so this is where the AVX2 and
/// portable loops run as shipped (in place, they once fell back to scalar code: a 2× slower
/// EfficientNet-B0 on AVX2 CPUs). Outputs must equal PyTorch's (fixtures of tools/fixtures/models).
final class CLIVectorISATests: XCTestCase {
    var temp = TempDir("cli")

    /// The ISAs to run: every level the CPU reaches (WCONV_VECTOR_ISA only lowers it).
    var isas: [String] {
        let level = CPUFeatures.current.level
        return ["portable"] + (level >= .avx2 ? ["avx2"] : []) + (level >= .avx512 ? ["avx512"] : [])
    }

    func check(_ model: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("models/manifest.json")))) as? [String: Any])
        let entry = try XCTUnwrap(manifest[model] as? [String: Any])
        let weights = CLI.fixture("models/" + (entry["files"] as! [String]).first { $0.hasSuffix(".safetensors") }!)
        let io = try SafetensorsReader.read(path: CLI.fixture("models/" + (entry["io"] as! String))).tensors
        let input = temp.file("\(model).input.npy")
        try NPY.write(try XCTUnwrap(io["input"]), to: input)
        let want = try XCTUnwrap(io["output"])
        for isa in isas {
            let out = temp.file("\(model).\(isa).npy")
            let r = try CLI.run(["run", weights, "--input", input, "-o", out], environment: ["WCONV_VECTOR_ISA": isa])
            XCTAssertEqual(r.status, 0, "\(model) at \(isa): \(r.stderr)", file: file, line: line)
            let got = try NPY.read(path: out)
            XCTAssertEqual(got.shape, want.shape, "\(model) at \(isa)", file: file, line: line)
            assertClose(got.floats(), want.floats(), rtol: 1e-4, atol: 1e-5, "\(model) at \(isa)", file: file, line: line)
        }
    }

    /// wconv's Winograd F(4×4, 3×3) as shipped (C built at -O2 by SwiftPM), where CPUs without
    /// AVX-512 run it (oneDNN held to AVX2) and where it is asked for: VGG's 3×3 conv of 16 → 24
    /// channels on 12×12 maps, the fixture's two images repeated to a batch of 16 (144 tiles; the
    /// size rule is lowered for it); the next conv feeds the flatten (NCHW) and stays on oneDNN.
    func testWinogradOnAVX2MatchesPyTorch() throws {
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: CLI.fixture("models/manifest.json")))) as? [String: Any])
        let entry = try XCTUnwrap(manifest["vgg"] as? [String: Any])
        let weights = CLI.fixture("models/" + (entry["files"] as! [String])[0])
        let io = try SafetensorsReader.read(path: CLI.fixture("models/" + (entry["io"] as! String))).tensors
        let x = try XCTUnwrap(io["input"]), want = try XCTUnwrap(io["output"]).floats()
        let input = temp.file("vgg16.input.npy")
        try NPY.write(Tensor(shape: [16] + x.shape.dropFirst(), floats: Array(repeating: x.floats(), count: 8).flatMap { $0 }), to: input)
        var envs: [[String: String]] = [["WCONV_DNNL_WINOGRAD": "wconv", "WCONV_WINOGRAD_MIN_MACS": "0"]]
        if CPUFeatures.current.level >= .avx2 { envs.append(["ONEDNN_MAX_CPU_ISA": "AVX2", "WCONV_VECTOR_ISA": "avx2", "WCONV_WINOGRAD_MIN_MACS": "0"]) }
        for env in envs {
            let out = temp.file("vgg16.out.npy")
            let r = try CLI.run(["run", weights, "--input", input, "-o", out], environment: env)
            XCTAssertEqual(r.status, 0, "\(env): \(r.stderr)")
            assertClose(try NPY.read(path: out).floats(), Array(repeating: want, count: 8).flatMap { $0 }, rtol: 1e-4, atol: 1e-5, "\(env)")
        }
    }

    func testEfficientNetSiLU() throws { try check("efficientnet") }
    func testEfficientNetV2SiLU() throws { try check("efficientnet_v2") }
    func testBERTGELU() throws { try check("bert_cls") }
}
