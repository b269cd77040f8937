import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats

/// Pickle decoder semantics and limits on hand-assembled opcode streams.
final class PickleDecoderTests: XCTestCase {
    func decode(_ bytes: [UInt8]) throws -> PickleResult {
        try bytes.withUnsafeBytes { try PickleDecoder.decode($0, context: "test") }
    }

    func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }

    func assertUnsafe(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(bytes), file: file, line: line) { e in
            let w = e as! WconvError
            XCTAssertEqual(w.kind, .unsafe, "\(w)", file: file, line: line)
            XCTAssertTrue(w.message.contains(fragment), w.message, file: file, line: line)
        }
    }

    func assertInvalid(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(bytes), file: file, line: line) { e in
            let w = e as! WconvError
            XCTAssertEqual(w.kind, .invalidInput, "\(w)", file: file, line: line)
            XCTAssertTrue(w.message.contains(fragment), w.message, file: file, line: line)
        }
    }

    func testScalarsAndContainers() throws {
        // {'a': [1, -2, 2**40, 1.5, True, None, 'é'], 'b': (b'xy',)}  protocol 2/3 opcodes
        var p: [UInt8] = [0x80, 0x03, 0x7D, 0x71, 0x00, 0x28]
        p += [0x58, 1, 0, 0, 0] + Array("a".utf8) + [0x5D, 0x28, 0x4B, 1, 0x4A] + withUnsafeBytes(of: Int32(-2).littleEndian, Array.init)
        p += [0x8A, 6, 0, 0, 0, 0, 0, 1] + [0x47] + withUnsafeBytes(of: (1.5).bitPattern.bigEndian, Array.init)
        p += [0x88, 0x4E, 0x8C, 2, 0xC3, 0xA9, 0x65]
        p += [0x58, 1, 0, 0, 0] + Array("b".utf8) + [0x43, 2] + Array("xy".utf8) + [0x85, 0x75, 0x2E]
        let r = try decode(p)
        guard case .dict(let d) = r.value, case .list(let l)? = d["a"], case .tuple(let t)? = d["b"] else { return XCTFail() }
        XCTAssertEqual(l.items.count, 7)
        XCTAssertEqual(l.items[0].asInt, 1)
        XCTAssertEqual(l.items[1].asInt, -2)
        XCTAssertEqual(l.items[2].asInt, 1 << 40)
        if case .float(let f) = l.items[3] { XCTAssertEqual(f, 1.5) } else { XCTFail() }
        XCTAssertEqual(l.items[6].asString, "é")
        if case .bytes(let b) = t.items[0] { XCTAssertEqual(b, Array("xy".utf8)) } else { XCTFail() }
        XCTAssertEqual(r.protocolVersion, 3)
    }

    func testProtocol0Text() throws {
        // (lp0\nI1\naS'a\\'b'\np1\naF2.5\naL12345678901234567890L\na.
        let text = "(lp0\nI1\naS'a\\'b'\np1\naF2.5\naL12345678901234567890L\nag1\na."
        let r = try decode(Array(text.utf8))
        guard case .list(let l) = r.value else { return XCTFail() }
        XCTAssertEqual(l.items[0].asInt, 1)
        XCTAssertEqual(l.items[1].asString, "a'b")
        XCTAssertEqual(l.items[4].asString, "a'b")
        if case .bigInt = l.items[3] {} else { XCTFail("huge LONG kept as big int") }
    }

    func testDangerousGlobalsRefusedWhereverTheyAppear() {
        assertUnsafe(global("os", "system") + [0x2E], "os")
        assertUnsafe(global("posix", "system") + [0x2E], "posix.system")
        assertUnsafe(global("__builtin__", "eval") + [0x2E], "builtins.eval")
        assertUnsafe(global("builtins", "getattr") + [0x2E], "getattr")
        assertUnsafe(global("subprocess", "Popen") + [0x2E], "subprocess")
        assertUnsafe(global("runpy", "_run_code") + [0x2E], "runpy")
        assertUnsafe(global("pip", "main") + [0x2E], "pip")
        assertUnsafe(global("torch", "load") + [0x2E], "torch.load")
        assertUnsafe(global("torch.hub", "load") + [0x2E], "torch.hub")
        // STACK_GLOBAL (protocol 4) and INST (protocol 0) go through the same table.
        assertUnsafe([0x80, 4, 0x8C, 2] + Array("nt".utf8) + [0x8C, 6] + Array("system".utf8) + [0x93, 0x2E], "nt")
        assertUnsafe([0x28] + [0x69] + Array("os\nsystem\n".utf8) + [0x2E], "os")
        // getattr chains via dotted names
        assertUnsafe([0x80, 4, 0x8C, 5] + Array("torch".utf8) + [0x8C, 8] + Array("hub.load".utf8) + [0x93, 0x2E], "torch.hub")
        assertUnsafe([0x80, 4, 0x8C, 8] + Array("__main__".utf8) + [0x8C, 13] + Array("f.__globals__".utf8) + [0x93, 0x2E], "dunder")
        // The payload comes before a broken tail: still refused as unsafe, not as "corrupt".
        assertUnsafe(global("os", "system") + [0x58, 2, 0, 0, 0] + Array("id".utf8) + [0x85, 0x52, 0xFF, 0xFF], "os")
    }

    func testUnknownClassesBecomeStubs() throws {
        // __main__.Thing() via NEWOBJ + BUILD, then a REDUCE of an unknown function
        var p = global("__main__", "Thing") + [0x29, 0x81, 0x7D, 0x58, 1, 0, 0, 0, 0x78, 0x4B, 5, 0x73, 0x62]
        p += global("mylib.util", "make") + [0x29, 0x52, 0x86, 0x2E]
        let r = try decode(p)
        XCTAssertEqual(r.stubbedGlobals, ["__main__.Thing", "mylib.util.make"])
        guard case .tuple(let t) = r.value, case .object(let o) = t.items[0], case .object(let call) = t.items[1] else { return XCTFail() }
        XCTAssertFalse(o.isCallRecord)
        XCTAssertEqual(o.stateDict?["x"]?.asInt, 5)
        XCTAssertTrue(call.isCallRecord)
    }

    func testTensorDependingOnUnknownCallIsUnsafe() {
        // _rebuild_tensor_v2(mylib.f(), 0, (1,), (1,), False, OrderedDict())
        var p = global("torch._utils", "_rebuild_tensor_v2") + [0x28]
        p += global("mylib", "f") + [0x29, 0x52, 0x4B, 0, 0x4B, 1, 0x85, 0x4B, 1, 0x85, 0x89]
        p += global("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52, 0x2E]
        assertUnsafe(p, "mylib.f")
    }

    func testMalformedStreams() {
        assertInvalid([0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x41], "declares")
        assertInvalid([0x80, 2, 0x68, 5, 0x2E], "memo slot 5")
        assertInvalid([0x80, 2, 0x2E], "STOP with 0 values")
        assertInvalid([0x80, 2, 0x4E, 0x4E, 0x2E], "STOP with 2 values")
        assertInvalid([0x80, 2, 0x4E], "truncated")
        assertInvalid([0x80, 2, 0x61, 0x2E], "empty stack")
        assertInvalid([0x80, 2, 0x4E, 0x4E, 0x61, 0x2E], "APPEND onto a None")
        assertInvalid([0x80, 2, 0x82, 1, 0x2E], "extension registry")
        assertInvalid([0x80, 2, 0x4E, 0x28, 0x62, 0x2E], "MARK")
        assertInvalid([0x80, 2, 0x51, 0x2E], "empty stack")
        assertInvalid([0x80, 9], "protocol 9")
        assertInvalid([0x80, 2, 0xA0], "unknown opcode")
    }

    /// BINGET re-pushes shared subtrees; 2^64 logical nodes from a few hundred bytes must stay cheap.
    func testMemoBombIsLinear() throws {
        var p: [UInt8] = [0x80, 2, 0x5D, 0x71, 0, 0x30]
        for _ in 0..<64 { p += [0x68, 0, 0x68, 0, 0x86, 0x71, 0, 0x30] }
        p += [0x68, 0, 0x2E]
        let start = Date()
        let r = try decode(p)
        let walker = TensorTreeWalker(path: "bomb")
        XCTAssertTrue(walker.summary(r.value, depth: 0).contains("tuple"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
    }

    /// Deep nesting (100k levels) must neither overflow the stack while decoding nor while freeing.
    func testDeepNestingDoesNotOverflow() throws {
        var p: [UInt8] = [0x80, 2, 0x4E]
        p += Array(repeating: 0x85, count: 100_000)   // TUPLE1 × 100k
        p += [0x2E]
                _ = try decode(p)
        // Lists chained through the memo after creation: L0 ∋ L1 ∋ L2 …
        var q: [UInt8] = [0x80, 2, 0x5D, 0x72] + [0, 0, 0, 0, 0x30]
        for i in 1..<50_000 {
            q += [0x5D, 0x72] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init)      // new list → memo i
            q += [0x6A] + withUnsafeBytes(of: UInt32(i - 1).littleEndian, Array.init)        // get i-1
            q += [0x6A] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) + [0x61, 0x30, 0x30] // append i to i-1, pop both
        }
        q += [0x6A, 0, 0, 0, 0, 0x2E]
        let r = try decode(q)
        _ = TensorTreeWalker(path: "deep").summary(r.value, depth: 0)
    }

    func testCodecsSetsAndNumpyScalars() throws {
        // (_codecs.encode('\xff', 'latin1'), set([1]))
        var p = global("_codecs", "encode") + [0x58, 2, 0, 0, 0, 0xC3, 0xBF, 0x58, 6, 0, 0, 0] + Array("latin1".utf8) + [0x86, 0x52]
        p += global("__builtin__", "set") + [0x5D, 0x4B, 1, 0x61, 0x85, 0x52, 0x86, 0x2E]
        let r = try decode(p)
        guard case .tuple(let t) = r.value, case .bytes(let b) = t.items[0], case .set(let s) = t.items[1] else { return XCTFail() }
        XCTAssertEqual(b, [0xFF])
        XCTAssertEqual(s.items.count, 1)
        XCTAssertTrue(r.stubbedGlobals.isEmpty)
    }
}
