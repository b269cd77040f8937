import Foundation
import OrderedCollections
import WconvFormats
import WconvTensor
import XCTest

/// The bundle operations behind `diff`, `convert` and `inspect`: comparison with tolerances,
/// renames with collision checks, dtype narrowing that keeps ties, and inspect's totals.
final class BundleToolsTests: XCTestCase {
    func bundle(_ tensors: [(String, Tensor)]) -> TensorBundle {
        TensorBundle(format: "test", tensors: OrderedDictionary(uniqueKeysWithValues: tensors))
    }

    func testDiffSortsEveryFaultAndAppliesTolerances() {
        let a = bundle([("same", Tensor(shape: [2], floats: [1, 2])), ("close", Tensor(shape: [3], floats: [1, 100, .nan])),
                        ("shape", Tensor(shape: [2], floats: [0, 0])), ("dtype", Tensor(zeros: [2], dtype: .f32)),
                        ("gone", Tensor(shape: [1], floats: [0]))])
        let b = bundle([("same", Tensor(shape: [2], floats: [1, 2])), ("close", Tensor(shape: [3], floats: [1.5, 100.5, .nan])),
                        ("shape", Tensor(shape: [1, 2], floats: [0, 0])), ("dtype", Tensor(zeros: [2], dtype: .f16)),
                        ("new", Tensor(shape: [1], floats: [0]))])
        var bytes = 0
        let d = TensorDiff.compare(a, b, atol: 0.6, rtol: 0, progress: { bytes += $0 })
        XCTAssertEqual(d.missing, ["gone"])
        XCTAssertEqual(d.unexpected, ["new"])
        XCTAssertEqual(d.shapeMismatches.map(\.name), ["shape"])
        XCTAssertEqual(d.dtypeMismatches.map(\.name), ["dtype"])
        XCTAssertEqual(bytes, 8 + 12 + 8 + 8, "progress counts the tensors found in both")
        let close = d.entries.first { $0.name == "close" }!
        XCTAssertEqual(close.maxAbs, 0.5)
        XCTAssertEqual(close.maxRel, 0.5 / 1.5, accuracy: 1e-12)
        XCTAssertEqual(close.mismatched, 0, "within atol 0.6; NaN matches NaN")
        XCTAssertTrue(d.entries.first { $0.name == "same" }!.bitExact)
        XCTAssertFalse(d.equal)
        XCTAssertEqual(d.summary, "1 missing, 1 unexpected, 1 shape mismatches, 1 dtype mismatches")
        // A tighter tolerance turns the close tensor into a value mismatch.
        let strict = TensorDiff.compare(a, b, atol: 0.4, rtol: 0, progress: { _ in })
        XCTAssertEqual(strict.valueMismatches.map(\.name), ["close"])
        XCTAssertEqual(strict.valueMismatches.first?.mismatched, 2)
        // NaN against a number is a mismatch.
        let nan = TensorDiff.compare(bundle([("x", Tensor(shape: [1], floats: [.nan]))]), bundle([("x", Tensor(shape: [1], floats: [1]))]),
                                     atol: 1, rtol: 1, progress: { _ in })
        XCTAssertEqual(nan.entries[0].mismatched, 1)
        XCTAssertTrue(nan.entries[0].maxAbs.isNaN)
        let json = d.json(a: "a.pth", b: "b.safetensors", atol: 0.6, rtol: 0)
        XCTAssertEqual(json.object.map { Array($0.keys) }, ["a", "b", "atol", "rtol", "equal", "bit_exact", "compared", "missing",
                                                           "unexpected", "shape_mismatches", "dtype_mismatches", "tensors"])
        XCTAssertEqual(json["compared"], 4)
        XCTAssertEqual(json["tensors"]?.array?.count, 3, "shape mismatches have no values to compare")
    }

    func testNameMappingStripsWrappersAndRefusesCollisions() throws {
        XCTAssertEqual(NameMapping.autoPrefix(["module.model.a", "module.model.b"]), "module.model.")
        XCTAssertNil(NameMapping.autoPrefix(["module.a", "b"]))
        XCTAssertNil(NameMapping.autoPrefix(["module."]), "a prefix is never the whole name")
        var b = bundle([("module.w", Tensor(shape: [1], floats: [1])), ("module.v", Tensor(shape: [1], floats: [2]))])
        b.aliases = ["module.v": "module.w"]
        let strip = NameMapping.Rule(description: "strip") { $0.hasPrefix("module.") ? String($0.dropFirst(7)) : $0 }
        XCTAssertEqual(try NameMapping.apply(strip, to: &b), 2)
        XCTAssertEqual(Array(b.tensors.keys), ["w", "v"])
        XCTAssertEqual(b.aliases, ["v": "w"])
        let merge = NameMapping.Rule(description: "rename s/[wv]/x/") { _ in "x" }
        XCTAssertThrowsError(try NameMapping.apply(merge, to: &b)) { e in
            XCTAssertEqual((e as? WconvError)?.kind, .usage)
            XCTAssertTrue("\(e)".contains("would give \"w\" and \"v\" the same name \"x\""), "\(e)")
        }
        let empty = NameMapping.Rule(description: "rename s/.*//") { _ in "" }
        XCTAssertThrowsError(try NameMapping.apply(empty, to: &b)) { e in XCTAssertTrue("\(e)".contains("into an empty name"), "\(e)") }
        XCTAssertEqual(Array(b.tensors.keys), ["w", "v"], "a refused rule changes nothing")
    }

    func testDTypeNarrowingKeepsTiesAndCountsLoss() throws {
        let big = Tensor(shape: [3], floats: [1e6, 1e-9, 0.5])
        var b = bundle([("big", big), ("tied", big), ("ids", Tensor(zeros: [2], dtype: .i64))])
        var seen = 0
        let (converted, reports) = DTypeNarrowing.convert(&b, to: .f16, progress: { seen += $0 })
        XCTAssertEqual(converted, 1, "one conversion for two names over one view")
        XCTAssertEqual(reports.map(\.0), ["big"])
        XCTAssertEqual(reports[0].1.overflowed, 1)
        XCTAssertEqual(reports[0].1.flushedToZero, 1)
        XCTAssertEqual(b.tensors["big"]?.dtype, .f16)
        XCTAssertTrue(b.tensors["big"]!.storage === b.tensors["tied"]!.storage, "tied tensors stay tied")
        XCTAssertEqual(b.tensors["ids"]?.dtype, .i64, "integers are left alone")
        XCTAssertEqual(b.tensors["big"]?.floats(), [.infinity, 0, 0.5])
        XCTAssertEqual(seen, 12 + 12 + 16)
    }

    func testInspectTotalsCountTiedTensorsOnce() throws {
        let w = Tensor(shape: [2, 2], floats: [1, 2, 3, 4])
        var b = bundle([("enc.layer.w", w), ("dec.layer.w", w), ("enc.ids", Tensor(zeros: [3], dtype: .i64)), ("head", Tensor(shape: [1], floats: [0]))])
        b.aliases = ["head": "enc.layer.w"]
        XCTAssertEqual(InspectReport.storedBytes(b), 16 + 16 + 24, "the alias is not stored; two names over one storage are both read")
        XCTAssertEqual(InspectReport.tiedGroups(b), [["enc.layer.w", "dec.layer.w"], ["enc.layer.w", "head"]])
        XCTAssertEqual(InspectReport.dtypeBreakdown(b).map { "\($0.0.rawValue) \($0.1) \($0.2)" }, ["f32 2 8", "i64 1 3"])
        XCTAssertEqual(InspectReport.moduleRows(b).map(\.module), ["enc", "dec", "head"])
        XCTAssertEqual(InspectReport.moduleRows(b).first, InspectReport.ModuleRow(module: "enc", tensors: 2, elements: 7, bytes: 40, dtypes: ["f32", "i64"]))
        let json = InspectReport.json(file: "m.pth", format: .safetensors, bundle: b, stats: ["head": TensorStats(Tensor(shape: [3], floats: [1, .nan, 3]))])
        XCTAssertEqual(json["totals"]?["bytes"], 56)
        XCTAssertEqual(json["tensors"]?[3]?["alias_of"], "enc.layer.w")
        XCTAssertEqual(json["tensors"]?[3]?["stats"]?["nan"], 1)
        XCTAssertEqual(json["tensors"]?[3]?["stats"]?["mean"], 2.0)
    }

    func testRenameRulesFollowSed() throws {
        XCTAssertEqual(try RenameRule("s/^module\\.//").apply("module.layer.module.w"), "layer.module.w")
        XCTAssertEqual(try RenameRule("s/a/b/").apply("aaa"), "baa", "first match only without g")
        XCTAssertEqual(try RenameRule("s/a/b/g").apply("aaa"), "bbb")
        XCTAssertEqual(try RenameRule("s/^(layer[0-9])\\./\\1_/").apply("layer3.conv"), "layer3_conv")
        XCTAssertEqual(try RenameRule("s/conv/[&]/").apply("x.conv.w"), "x.[conv].w", "& is the whole match")
        XCTAssertEqual(try RenameRule("s|a/b|c\\|d|").apply("a/b.w"), "c|d.w", "any delimiter, escaped inside")
        XCTAssertEqual(try RenameRule("s/w/$1/").apply("w"), "$1", "a dollar in the replacement is literal")
        XCTAssertEqual(try RenameRule("s/zzz/y/").apply("w"), "w")
        for (bad, why) in [("x/a/b/", "starts with s"), ("s/a/b", "three parts"), ("s/a/b/i", "unknown flag"), ("s/(/x/", "invalid regular expression")] {
            XCTAssertThrowsError(try RenameRule(bad), bad) { e in
                XCTAssertEqual((e as? WconvError)?.kind, .usage)
                XCTAssertTrue("\(e)".contains(why) && "\(e)".contains(bad), "\(e)")
            }
        }
    }
}
