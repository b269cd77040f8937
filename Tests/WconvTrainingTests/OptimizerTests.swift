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

/// Gradients held in plain buffers, as a session leaves them after backwardInPlace; `tie` makes a
/// second name share the first's buffer (tied parameters).
final class BufferGradients: GradientAccess {
    var storage: [String: UnsafeMutableBufferPointer<Float>] = [:]
    init(_ values: [String: [Float]], tie: (alias: String, target: String)? = nil) {
        for (k, v) in values {
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: v.count)
            _ = p.initialize(from: v)
            storage[k] = p
        }
        if let tie { owned = Set(values.keys); storage[tie.alias] = storage[tie.target] } else { owned = Set(values.keys) }
    }
    private let owned: Set<String>
    func gradientBuffer(named: String) -> UnsafeMutableBufferPointer<Float>? { storage[named] }
    deinit { for k in owned { storage[k]!.deallocate() } }
}

final class OptimizerTests: XCTestCase {
    /// Steps and clipping that read gradients in place give the values of the dictionary path.
    func testInPlaceGradientsMatchTheDictionaryPath() throws {
        let g: [String: [Float]] = ["a": [0.5, -2, 3], "b": [1, 1, -4, 0.25]]
        let w: [String: [Float]] = ["a": [1, 2, 3], "b": [0, -1, 2, 0.5]]
        let kind = OptimizerKind.adam(beta1: 0.9, beta2: 0.999, eps: 1e-8, decoupled: true)
        let groups = [ParamGroup(name: "all", parameters: ["a", "b"], lr: 0.1, weightDecay: 0.01)]
        let dict = g.mapValues { Tensor(shape: [$0.count], floats: $0) }
        let clipped = GradientClipping.clip(dict, maxNorm: 1)
        let buffers = BufferGradients(g)
        let norm = GradientClipping.clipInPlace(buffers, names: ["a", "b"], maxNorm: 1)
        XCTAssertEqual(norm, GradientClipping.norm(dict))
        for k in ["a", "b"] { XCTAssertEqual(Array(buffers.storage[k]!), clipped[k]!.floats()) }
        let pa = ArrayParams(w), pb = ArrayParams(w)
        let oa = Optimizer(kind: kind, groups: groups), ob = Optimizer(kind: kind, groups: groups)
        for _ in 0..<3 {
            try oa.step(parameters: pa, gradients: clipped)
            try ob.step(parameters: pb, gradients: buffers)
        }
        for k in ["a", "b"] { XCTAssertEqual(pa.values(k), pb.values(k)) }
        // A buffer two names share is counted in the norm for each (as two copies were) but scaled once.
        let tied = BufferGradients(["a": [3, 4]], tie: (alias: "t", target: "a"))
        let n = GradientClipping.clipInPlace(tied, names: ["a", "t"], maxNorm: 1)
        XCTAssertEqual(n, GradientClipping.norm(["a": Tensor(shape: [2], floats: [3, 4]), "t": Tensor(shape: [2], floats: [3, 4])]))
        let coef = Float(1) / (n + 1e-6)
        XCTAssertEqual(Array(tied.storage["a"]!), [3 * coef, 4 * coef])
    }

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
