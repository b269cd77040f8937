import XCTest
@testable import WconvRuntime

/// `sgemm` with one row of A and C runs as a GEMV (a batch-1 LSTM step, a single-row linear): the same
/// numbers as the definition for B stored either way, with alpha, with β = 0 never reading C (NaN
/// there) and with β = 1 accumulating; strided B (ldb larger than a row).
final class SingleRowGEMMTests: XCTestCase {
    func testOneRowMatchesTheDefinition() {
        var rng = TestRNG(71)
        for (n, k) in [(2, 3), (37, 5), (300, 129)] {
            for transB in [false, true] {
                let ldb = (transB ? k : n) + 3
                let a = rng.floats(k), b = rng.floats((transB ? n : k) * ldb), prior = rng.floats(n)
                for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1)] {
                    var c = beta == 0 ? [Float](repeating: .nan, count: n) : prior
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                        sgemm(transA: false, transB: transB, m: 1, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: k,
                              b: bp.baseAddress!, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: n)
                    } } }
                    let want = (0..<n).map { j -> Float in
                        let dot = (0..<k).reduce(0.0) { $0 + Double(a[$1]) * Double(transB ? b[j * ldb + $1] : b[$1 * ldb + j]) }
                        return Float(Double(alpha) * dot + (beta == 0 ? 0 : Double(beta) * Double(prior[j])))
                    }
                    assertClose(c, want, rtol: 1e-5, atol: 1e-5, "n \(n) k \(k) transB \(transB) α \(alpha) β \(beta)")
                }
            }
        }
    }
}
