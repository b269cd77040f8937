import CWconvVector
import XCTest
@testable import WconvRuntime

/// The vectorised ReLU-gradient and SiLU kernels against the scalar formulas in double precision:
/// every count up to 40 (vector body and scalar tail), values over the whole float range, ±∞, NaN;
/// the SiLU kernels on each code path the CPU has (AVX-512, AVX2, portable C).
final class ActivationVectorTests: XCTestCase {
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = TestRNG(seed)
        let special: [Float] = [0, -0, 1e-30, -1e-30, 87, -87, 88.5, -88.5, 89, -89, 100, -100, .infinity, -.infinity, .nan]
        let random = rng.floats(n, scale: 20)
        return (0..<n).map { i in i % 5 == 4 ? special[(i / 5 + Int(seed)) % special.count] : random[i] }
    }

    /// Runs `body` on each code path of the C kernels this CPU has (AVX-512, AVX2, portable), then
    /// restores the path chosen at start-up; returns the paths run.
    @discardableResult
    func forEachPath(_ body: (String) -> Void) -> [String] {
        let chosen = String(cString: wconv_vector_isa())
        defer { _ = wconv_vector_use(chosen) }
        var ran: [String] = []
        for isa in ["avx512", "avx2", "portable"] where wconv_vector_use(isa) != 0 {
            ran.append(isa)
            body(isa)
        }
        return ran
    }

    func close(_ a: Float, _ b: Double, _ what: String) {
        if b.isNaN { XCTAssertTrue(a.isNaN, "\(what): \(a), expected NaN"); return }
        if b.isInfinite { XCTAssertEqual(Double(a), b, what); return }
        XCTAssertEqual(Double(a), b, accuracy: 2e-6 * max(1, abs(b)), what)
    }

    func testSiLUForwardAndGradient() {
        let chosen = String(cString: wconv_vector_isa())
        let ran = forEachPath(checkSiLU)
        XCTAssertTrue(ran.contains("portable"), "the portable path always runs")
        #if arch(x86_64)
        XCTAssertTrue(ran.contains("avx2") || !chosen.hasPrefix("avx"), "paths run: \(ran), chosen \(chosen)")
        #endif
    }

    func checkSiLU(_ isa: String) {
        for n in 0...40 {
            let x = values(n, seed: UInt64(n)), dy = values(n, seed: UInt64(100 + n)).map { $0.isFinite ? $0 : 1 }
            var y = [Float](repeating: 0, count: n), dx = [Float](repeating: 0.5, count: n), dw = dx
            siluForward(x, &y, n)
            siluGradient(x, dy: dy, dx: &dx, n, accumulate: true)
            siluGradient(x, dy: dy, dx: &dw, n, accumulate: false)
            for i in 0..<n {
                let v = Double(x[i]), s = 1 / (1 + exp(-v))
                close(y[i], v == -.infinity ? .nan : v * s, "\(isa) silu(\(v))")
                let g = v == -.infinity ? Double.nan : Double(dy[i]) * s * (1 + v * (1 - s))
                close(dw[i], g, "\(isa) silu'(\(v)) written")
                close(dx[i], 0.5 + g, "\(isa) silu'(\(v)) added")
            }
        }
    }

    /// tanh, the sigmoid and GELU's tanh form (C kernels, wconv_tanh_sigmoid.c), forward and backward,
    /// on every path against float64: whole float range, ±∞, NaN, the region |x| < 4e-4 where tanh
    /// returns x, and counts that leave a scalar tail.
    func testTanhSigmoidAndGELUTanhForwardAndGradient() {
        forEachPath { isa in
            for n in [0, 1, 15, 16, 17, 40, 1001] {
                let x: [Float] = n == 1001 ? (0..<n).map { Float($0 - 500) / 60 } + [] : values(n, seed: UInt64(700 + n))
                let small = x.enumerated().map { $0.offset % 7 == 3 ? $0.element * 1e-5 : $0.element }
                let dy = values(n, seed: UInt64(800 + n)).map { $0.isFinite ? $0 : 1 }
                for act in [Activation.tanh, .sigmoid, .geluTanh] {
                    var y = [Float](repeating: 0, count: n), dx = [Float](repeating: 0.25, count: n)
                    act.apply(small, &y, n)
                    act.backward(x: small, dy: dy, dx: &dx, n)
                    for i in 0..<n {
                        let v = Double(small[i])
                        // tanh's value near ±1 carries float's unit in the last place (2.4e-7 at most, as libm's
                        // tanhf): what follows from it (1 − t², GELU's 1 + t) gets that much absolute slack.
                        let ulp1 = 2.4e-7, g = abs(Double(dy[i]))
                        let want: Double, grad: Double, slack: Double, gradSlack: Double
                        switch act {
                        case .tanh: want = tanh(v); grad = 1 - want * want; slack = 0; gradSlack = 2 * ulp1 * g
                        case .sigmoid: want = v.isNaN ? .nan : 1 / (1 + exp(-v)); grad = want * (1 - want); slack = 0; gradSlack = ulp1 * g
                        default:
                            let k = (2 / Double.pi).squareRoot(), t = tanh(k * (v + 0.044715 * v * v * v)), d = k * (1 + 3 * 0.044715 * v * v)
                            want = v.isInfinite ? (v > 0 ? v : .nan) : 0.5 * v * (1 + t)
                            grad = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * d
                            slack = 0.5 * abs(v) * ulp1; gradSlack = g * (0.5 + abs(v) * d) * 2 * ulp1
                        }
                        let what = "\(isa) \(act)(\(v))"
                        if want.isNaN { XCTAssertTrue(y[i].isNaN, "\(what): \(y[i])"); continue }
                        if want.isInfinite { XCTAssertEqual(Double(y[i]), want, what); continue }
                        XCTAssertEqual(Double(y[i]), want, accuracy: 5e-7 * abs(want) + slack + 1e-37, what)
                        guard grad.isFinite, abs(v) < 1e4 else { continue }
                        XCTAssertEqual(Double(dx[i]), 0.25 + Double(dy[i]) * grad, accuracy: 2e-6 * max(1, abs(Double(dy[i]) * grad)) + gradSlack, "\(what)′")
                    }
                }
            }
        }
    }

    /// GELU (erf) and its gradient on every path against float64: erf's approximation (PyTorch's,
    /// absolute error ≤ 1.5e-7) bounds GELU's error by 1e-7·|x| + float rounding.
    func testGELUForwardAndGradient() {
        forEachPath { isa in
            for n in [0, 1, 15, 16, 17, 40, 1000] {
                let x = (0..<n).map { i in n == 1000 ? Float(i - 500) / 50 : values(n, seed: UInt64(400 + n))[i] }.map { $0.isFinite && abs($0) < 30 ? $0 : 0.5 }
                let dy = values(n, seed: UInt64(500 + n)).map { $0.isFinite ? $0 : 1 }
                var y = [Float](repeating: 0, count: n), dx = [Float](repeating: 0.25, count: n)
                Activation.geluErf.apply(x, &y, n)
                Activation.geluErf.backward(x: x, dy: dy, dx: &dx, n)
                for i in 0..<n {
                    let v = Double(x[i]), cdf = 0.5 * (1 + erf(v / 2.0.squareRoot())), pdf = exp(-0.5 * v * v) / (2 * Double.pi).squareRoot()
                    XCTAssertEqual(Double(y[i]), v * cdf, accuracy: 2e-7 * abs(v) + 2e-7 * max(1, abs(v * cdf)), "\(isa) gelu(\(v))")
                    let g = Double(dy[i]) * (cdf + v * pdf)
                    XCTAssertEqual(Double(dx[i]), 0.25 + g, accuracy: 1e-6 * max(1, abs(Double(dy[i])) * (1 + abs(v))), "\(isa) gelu'(\(v))")
                }
            }
        }
    }

    /// Row softmax on every path against float64: masked (−∞) entries get exactly 0, a NaN entry or a
    /// row without a finite maximum gives a NaN row (as PyTorch), large logits do not overflow.
    func testSoftmaxRows() {
        forEachPath { isa in
            for n in [1, 7, 16, 17, 128, 131] {
                var rng = TestRNG(UInt64(600 + n))
                var x = rng.floats(4 * n, scale: 8)
                if n > 1 { x[0] = -.infinity }                            // row 0: one masked entry
                if n > 1 { x[n + 1] = 1e30 }                              // row 1: a huge logit
                for j in 0..<n { x[2 * n + j] = -.infinity }              // row 2: fully masked
                x[3 * n + n / 2] = .nan                                   // row 3: a NaN
                var y = [Float](repeating: 7, count: 4 * n)
                softmaxForward(x, outer: 4, axisLen: n, inner: 1, &y)
                for r in [0, 1] {
                    let row = (0..<n).map { Double(x[r * n + $0]) }, mx = row.max()!
                    let e = row.map { exp($0 - mx) }, s = e.reduce(0, +)
                    for j in 0..<n {
                        let want = e[j] / s
                        if x[r * n + j] == -.infinity { XCTAssertEqual(y[r * n + j], 0, "\(isa) masked entry") }
                        XCTAssertEqual(Double(y[r * n + j]), want, accuracy: 1e-6 * max(want, 1e-3), "\(isa) row \(r) [\(j)] of \(n)")
                    }
                }
                XCTAssertTrue((0..<n).allSatisfy { y[2 * n + $0].isNaN }, "\(isa): a fully masked row is NaN")
                XCTAssertTrue((0..<n).allSatisfy { y[3 * n + $0].isNaN }, "\(isa): a NaN entry makes the row NaN")
            }
        }
    }

    /// Layer norm rows on every path against float64, with and without weight and bias, a constant
    /// row (variance 0) and rows far from 0 (no cancellation: two passes in double).
    func testLayerNormRows() {
        forEachPath { isa in
            for n in [1, 7, 16, 17, 384, 385] {
                var rng = TestRNG(UInt64(700 + n))
                var x = rng.floats(3 * n, scale: 2)
                for j in 0..<n { x[n + j] = 2.5; x[2 * n + j] += 1000 }
                let w = rng.floats(n, scale: 1), b = rng.floats(n, scale: 1)
                for affine in [false, true] {
                    var y = [Float](repeating: 0, count: 3 * n), mean = [Float](repeating: 0, count: 3), inv = mean
                    w.withUnsafeBufferPointer { wp in
                        b.withUnsafeBufferPointer { bp in
                            layerNormForward(x, rows: 3, inner: n, weight: affine ? wp.baseAddress : nil, bias: affine ? bp.baseAddress : nil,
                                             epsilon: 1e-5, &y, savedMean: &mean, savedInvStd: &inv)
                        }
                    }
                    for r in 0..<3 {
                        let row = (0..<n).map { Double(x[r * n + $0]) }, m = row.reduce(0, +) / Double(n)
                        let v = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n), s = 1 / (v + 1e-5).squareRoot()
                        XCTAssertEqual(Double(mean[r]), m, accuracy: 1e-6 * max(1, abs(m)), "\(isa) mean")
                        XCTAssertEqual(Double(inv[r]), s, accuracy: 1e-5 * s, "\(isa) 1/σ")
                        for j in 0..<n {
                            var want = (row[j] - m) * s
                            if affine { want = want * Double(w[j]) + Double(b[j]) }
                            XCTAssertEqual(Double(y[r * n + j]), want, accuracy: 2e-4 * max(1, abs(want)), "\(isa) n \(n) row \(r) [\(j)] affine \(affine)")
                        }
                    }
                }
            }
        }
    }

    func testReLUGradientWrittenAddedAndInPlace() {
        for n in 0...40 {
            let v = values(n, seed: UInt64(200 + n)), dy = values(n, seed: UInt64(300 + n))
            var written = [Float](repeating: 7, count: n), added = [Float](repeating: 0.25, count: n), inPlace = dy
            reluGradient(v, dy: dy, dx: &written, n, accumulate: false)
            reluGradient(v, dy: dy, dx: &added, n, accumulate: true)
            inPlace.withUnsafeMutableBufferPointer { b in
                if let p = b.baseAddress { reluGradient(v, dy: p, dx: p, n, accumulate: false) }
            }
            for i in 0..<n {
                let g: Float = v[i] > 0 ? dy[i] : 0
                XCTAssertEqual(written[i].bitPattern, g.bitPattern, "relu'(\(v[i])) · \(dy[i])")
                XCTAssertEqual(inPlace[i].bitPattern, g.bitPattern)
                XCTAssertEqual(added[i].bitPattern, (0.25 + g).bitPattern)
            }
        }
    }
}
