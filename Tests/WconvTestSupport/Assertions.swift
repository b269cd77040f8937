import WconvTensor
import XCTest

/// Fails unless every `a[i]` is within `atol + rtol·|b[i]|` of `b[i]` (NaN only matches NaN), naming
/// the worst element.
public func assertClose<T: BinaryFloatingPoint>(_ a: [T], _ b: [T], rtol: T = 1e-4, atol: T = 1e-5, _ msg: String = "",
                                                file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(msg)", file: file, line: line)
    var worst: T = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let excess = abs(a[i] - b[i]) - (atol + rtol * abs(b[i]))
        if excess > worst || a[i].isNaN != b[i].isNaN { worst = max(excess, T.leastNormalMagnitude); at = i }
    }
    if at >= 0 { XCTFail("\(msg): element \(at): got \(a[at]) expected \(b[at])", file: file, line: line) }
}

/// A seeded random generator (SHA-256 of the seed and a counter), so tests that draw random inputs
/// draw the same ones every run.
public struct SeededGenerator: RandomNumberGenerator {
    private let seed: UInt64
    private var counter: UInt64 = 0
    public init(seed: UInt64) { self.seed = seed }
    public mutating func next() -> UInt64 {
        var h = SHA256()
        withUnsafeBytes(of: (seed, counter)) { h.update($0) }
        counter += 1
        return h.finalize().prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
