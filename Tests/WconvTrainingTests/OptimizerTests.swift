import OrderedCollections
import WconvTensor
@testable import WconvTraining
import XCTest

/// Parameters held in plain arrays (what the optimizer sees through ParameterAccess).
final class ArrayParams: ParameterAccess {
    var storage: [String: UnsafeMutableBufferPointer<Float>] = [:]
    init(_ values: [String: [Float]]) {
        for (k, v) in values {
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: v.count)
            _ = p.initialize(from: v)
            storage[k] = p
        }
    }
    func parameterBuffer(named: String) -> UnsafeMutableBufferPointer<Float>? { storage[named] }
    func values(_ k: String) -> [Float] { Array(storage[k]!) }
    deinit { storage.values.forEach { $0.deallocate() } }
}

final class OptimizerTests: XCTestCase {
    func testTrajectoriesMatchTorch() throws {
        let cases = try XCTUnwrap(Fixture.json("optim.json") as? [[String: Any]])
        XCTAssertEqual(cases.count, 7)
        for c in cases {
            let kindName = c["kind"] as! String
            let o = c["options"] as! [String: Any]
            let kind: OptimizerKind
            switch kindName {
            case "sgd":
                kind = .sgd(momentum: (o["momentum"] as? Double) ?? 0, dampening: (o["dampening"] as? Double) ?? 0,
                            nesterov: (o["nesterov"] as? Bool) ?? false)
            default:
                let betas = doubles(o["betas"])
                kind = .adam(beta1: betas[0], beta2: betas[1], eps: o["eps"] as! Double, decoupled: kindName == "adamw")
            }
            let groups = (c["groups"] as! [[String: Any]]).enumerated().map { i, g in
                ParamGroup(name: "g\(i)", parameters: g["names"] as! [String], lr: g["lr"] as! Double, weightDecay: g["weight_decay"] as! Double)
            }
            let initDict = c["init"] as! [String: Any]
            let params = ArrayParams(initDict.mapValues { floats($0) })
            let opt = Optimizer(kind: kind, groups: groups)
            let grads = c["grads"] as! [[String: Any]]
            let traj = c["trajectory"] as! [[String: Any]]
            let shapes = c["shapes"] as! [String: Any]
            for (s, g) in grads.enumerated() {
                var gt: [String: Tensor] = [:]
                for (k, v) in g { gt[k] = Tensor(shape: ints(shapes[k]), floats: floats(v)) }
                try opt.step(parameters: params, gradients: gt)
                for (k, v) in traj[s] {
                    let err = relErr(params.values(k), doubles(v))
                    XCTAssertLessThan(err, 1e-6, "\(kindName) \(o) step \(s) param \(k)")
                }
            }
        }
    }

    func testStateRoundTripContinuesExactly() throws {
        let cases = try XCTUnwrap(Fixture.json("optim.json") as? [[String: Any]])
        let c = cases[6]  // AdamW
        let groups = [ParamGroup(name: "all", parameters: ["w", "b", "nm"], lr: 0.01, weightDecay: 0.1)]
        let initDict = (c["init"] as! [String: Any]).mapValues { floats($0) }
        let shapes = c["shapes"] as! [String: Any]
        let grads = (c["grads"] as! [[String: Any]]).map { g in g.reduce(into: [String: Tensor]()) { $0[$1.key] = Tensor(shape: ints(shapes[$1.key]), floats: floats($1.value)) } }
        let a = ArrayParams(initDict), b = ArrayParams(initDict)
        let kind = OptimizerKind.adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled: true)
        let oa = Optimizer(kind: kind, groups: groups)
        for g in grads { try oa.step(parameters: a, gradients: g) }
        let ob = Optimizer(kind: kind, groups: groups)
        for g in grads.prefix(3) { try ob.step(parameters: b, gradients: g) }
        let ob2 = Optimizer(kind: kind, groups: groups)
        try ob2.importState(ob.exportState())
        for g in grads.dropFirst(3) { try ob2.step(parameters: b, gradients: g) }
        for k in ["w", "b", "nm"] { XCTAssertEqual(a.values(k), b.values(k), k) }
    }

    func testShapeMismatchThrows() {
        let p = ArrayParams(["w": [1, 2, 3]])
        let opt = Optimizer(kind: .sgd(momentum: 0, dampening: 0, nesterov: false), groups: [ParamGroup(name: "g", parameters: ["w"], lr: 0.1, weightDecay: 0)])
        XCTAssertThrowsError(try opt.step(parameters: p, gradients: ["w": Tensor(shape: [2], floats: [1, 1])]))
    }
}

final class ScheduleTests: XCTestCase {
    func testSchedulesMatchTorch() throws {
        let s = try XCTUnwrap(Fixture.json("schedules.json") as? [String: [String: Any]])
        func check(_ name: String, _ sched: LRSchedule, base: Double = 0.1) {
            let expected = doubles(s[name]!["lr"])
            XCTAssertFalse(expected.isEmpty, name)
            for (t, e) in expected.enumerated() {
                let got = sched.lr(base: base, step: t)
                XCTAssertLessThanOrEqual(abs(got - e), 1e-6 * max(abs(e), 1e-12) + 1e-15, "\(name) step \(t): \(got) vs \(e)")
            }
        }
        check("step", .step(size: 3, gamma: 0.1))
        check("cosine", .cosine(tMax: 10, etaMin: 1e-4))
        check("warmup", .warmup(startFactor: 0.1, iters: 5))
        check("warmup_cosine", .warmupCosine(warmup: 4, startFactor: 0.01, tMax: 8, etaMin: 0))
        check("onecycle", .oneCycle(totalSteps: 20))
        check("onecycle_linear", .oneCycle(totalSteps: 17, pctStart: 0.25, divFactor: 10, finalDivFactor: 100, cosine: false), base: 0.05)
        let mom = doubles(s["onecycle"]!["momentum"])
        for (t, m) in mom.enumerated() {
            XCTAssertEqual(LRSchedule.oneCycle(totalSteps: 20).momentum(step: t)!, m, accuracy: 1e-9, "momentum step \(t)")
        }
    }
}
