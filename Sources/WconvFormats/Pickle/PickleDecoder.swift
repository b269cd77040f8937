import WconvTensor

/// Bounds on what one pickle may make the decoder hold. Every count is also bounded by the input size
/// (each opcode adds at most a constant amount), so these only tighten that.
public struct PickleLimits: Sendable {
    public var maxMemoEntries = 1 << 24
    public var maxContainers = 1 << 26
    public var maxStackDepth = 1 << 24
    public var maxMarkDepth = 1 << 20
    public init() {}
}

/// What one decode produced. Keep it alive while using `value`.
public final class PickleResult {
    public let value: PickleValue
    public let arena: PickleArena
    /// Every GLOBAL/STACK_GLOBAL/INST name, first-seen order, unique.
    public let globalsSeen: [String]
    /// Names that became inert stubs (not in the table), first-seen order, unique.
    public let stubbedGlobals: [String]
    /// Offset just past the STOP opcode.
    public let endOffset: Int
    public let protocolVersion: Int

    init(value: PickleValue, arena: PickleArena, globalsSeen: [String], stubbedGlobals: [String], endOffset: Int, protocolVersion: Int) {
        self.value = value
        self.arena = arena
        self.globalsSeen = globalsSeen
        self.stubbedGlobals = stubbedGlobals
        self.endOffset = endOffset
        self.protocolVersion = protocolVersion
    }
}

/// A pickle decoder for protocols 0–5 that never executes anything (design.md §5).
///
/// GLOBAL names resolve through `PickleGlobal`'s fixed table; names that can run code are refused
/// the moment they appear (so a payload followed by a deliberately broken stream is still caught);
/// other unknown names become inert stubs. REDUCE interprets only allow-listed callables (tensor and
/// storage rebuilds, OrderedDict, set, `_codecs.encode`, numpy scalars); other calls become inert
/// records, and a tensor whose arguments come from one is refused as unsafe.
public enum PickleDecoder {
    /// Decodes one pickle starting at `offset` and ending at its STOP opcode.
    /// - Parameters:
    ///   - context: names the pickle in messages (e.g. `archive/data.pkl`).
    ///   - persistentLoad: maps a persistent id (BINPERSID/PERSID operand) to a value; nil refuses them.
    ///   - storageFromBytes: interprets `torch.storage._load_from_bytes(bytes)` (how a plain `pickle.dump`
    ///     embeds each tensor's storage as a legacy torch.save image); nil leaves such calls inert.
    public static func decode(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, context: String,
                              limits: PickleLimits = PickleLimits(),
                              persistentLoad: ((PickleValue) throws -> PickleValue)? = nil,
                              storageFromBytes: (([UInt8]) throws -> PickleValue)? = nil) throws -> PickleResult {
        let m = PickleMachine(bytes: bytes, position: offset, context: context, limits: limits, persistentLoad: persistentLoad)
        m.storageFromBytes = storageFromBytes
        let v = try m.run()
        return PickleResult(value: v, arena: m.arena, globalsSeen: m.globalsSeen, stubbedGlobals: m.stubbed,
                            endOffset: m.pos, protocolVersion: m.proto)
    }
}

final class PickleMachine {
    let bytes: UnsafeRawBufferPointer
    var pos: Int
    let context: String
    let limits: PickleLimits
    let persistentLoad: ((PickleValue) throws -> PickleValue)?
    var storageFromBytes: (([UInt8]) throws -> PickleValue)?
    let arena = PickleArena()
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    var proto = 0
    var globalsSeen: [String] = []
    var stubbed: [String] = []
    private var seenSet: Set<String> = []
    private var stubSet: Set<String> = []
    private var globalCache: [String: PickleGlobal] = [:]
    var opStart = 0
    var opcode: UInt8 = 0

    init(bytes: UnsafeRawBufferPointer, position: Int, context: String, limits: PickleLimits,
         persistentLoad: ((PickleValue) throws -> PickleValue)?) {
        self.bytes = bytes
        self.pos = position
        self.context = context
        self.limits = limits
        self.persistentLoad = persistentLoad
    }

    // MARK: errors

    func fail(_ what: String) -> WconvError {
        let op = opcode >= 0x20 && opcode < 0x7f ? "'\(Character(Unicode.Scalar(opcode)))'" : "0x\(String(opcode, radix: 16))"
        return WconvError.invalid("pickle \(context): \(what) (opcode \(op) at byte \(opStart))")
    }

    func unsafe(_ what: String) -> WconvError {
        WconvError(.unsafe, "pickle \(context) is refused as unsafe: \(what) (byte \(opStart)). wconv never runs code from model files; if you trust this file, re-save its weights with torch.save(model.state_dict()) or safetensors")
    }

    // MARK: input

    @inline(__always) func need(_ n: Int) throws {
        guard n >= 0, n <= bytes.count - pos else {
            throw fail("needs \(n) bytes but only \(max(0, bytes.count - pos)) remain; the pickle is truncated")
        }
    }

    @inline(__always) func u8() throws -> UInt8 {
        try need(1)
        let v = bytes[pos]; pos += 1; return v
    }

    @inline(__always) func le<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        try need(n)
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: T.self))
        pos += n
        return v
    }

    func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        try need(n)
        let r = UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
        pos += n
        return r
    }

    /// Length operand (u32/u64) checked against the remaining input before anything is allocated.
    func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let raw = try le(T.self)
        guard raw >= 0, UInt64(raw) <= UInt64(bytes.count - pos) else {
            throw fail("declares \(raw) bytes but only \(bytes.count - pos) remain; the pickle is truncated or corrupt")
        }
        return Int(raw)
    }

    func line() throws -> String {
        var e = pos
        while e < bytes.count && bytes[e] != 0x0A { e += 1 }
        guard e < bytes.count else { throw fail("unterminated text line; the pickle is truncated") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<e]), as: UTF8.self)
        pos = e + 1
        return s
    }

    func utf8(_ raw: UnsafeRawBufferPointer) -> String {
        String(decoding: raw, as: UTF8.self)
    }

    // MARK: stack

    @inline(__always) func push(_ v: PickleValue) throws {
        guard stack.count < limits.maxStackDepth else { throw fail("stack deeper than \(limits.maxStackDepth)") }
        stack.append(v)
    }

    @inline(__always) func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("pops from an empty stack") }
        if let m = marks.last, stack.count < m { throw fail("pops across a MARK") }
        return v
    }

    @inline(__always) func top() throws -> PickleValue {
        guard let v = stack.last else { throw fail("needs a value on an empty stack") }
        if let m = marks.last, stack.count <= m { throw fail("reads across a MARK") }
        return v
    }

    func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("has no MARK to pop to") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    func track<C: PickleContainer>(_ c: C) throws -> C {
        guard arena.count < limits.maxContainers else { throw fail("builds more than \(limits.maxContainers) objects") }
        arena.add(c)
        return c
    }

    func tuple(_ items: [PickleValue]) throws -> PickleValue { .tuple(try track(PickleTuple(items))) }

    func memoPut(_ i: Int, _ v: PickleValue) throws {
        guard i >= 0 else { throw fail("negative memo index \(i)") }
        if memo[i] == nil, memo.count >= limits.maxMemoEntries { throw fail("memo exceeds \(limits.maxMemoEntries) entries") }
        memo[i] = v
    }

    func memoGet(_ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw fail("reads memo slot \(i), which was never stored") }
        return v
    }

    // MARK: globals

    func resolveGlobal(module: String, name: String) throws -> PickleGlobal {
        let q = "\(module).\(name)"
        if let g = globalCache[q] { return g }
        if seenSet.insert(q).inserted { globalsSeen.append(q) }
        if let why = PickleGlobal.danger(module: module, name: name) {
            throw unsafe("it references \(q): \(why)")
        }
        guard !module.isEmpty, !name.isEmpty, module.utf8.count < 512, name.utf8.count < 512 else {
            throw fail("has an empty or oversized GLOBAL name")
        }
        let g = PickleGlobal(module: module, name: name)
        if g.kind == .unknown, stubSet.insert(q).inserted { stubbed.append(q) }
        globalCache[q] = g
        return g
    }

    // MARK: the loop

    func run() throws -> PickleValue {
        while true {
            opStart = pos
            opcode = try u8()
            guard let op = PickleOpcode(rawValue: opcode) else {
                throw fail("unknown opcode; this is not a pickle or it is corrupt")
            }
            switch op {
            case .proto:
                let p = try u8()
                guard p <= 5 else { throw fail("protocol \(p) is newer than any Python writes (max 5)") }
                proto = Int(p)
            case .frame: // framing is only a hint for buffered readers
                let n = try le(UInt64.self)
                guard n <= UInt64(bytes.count - pos) else { throw fail("frame of \(n) bytes exceeds the remaining input") }
            case .stop:
                guard marks.isEmpty else { throw fail("STOP with an open MARK") }
                guard stack.count == 1 else { throw fail("STOP with \(stack.count) values on the stack (expected 1)") }
                return stack[0]
            case .mark:
                guard marks.count < limits.maxMarkDepth else { throw fail("MARKs nested deeper than \(limits.maxMarkDepth)") }
                marks.append(stack.count)
            case .pop:
                if let m = marks.last, m == stack.count {
                    marks.removeLast() // POP of a bare MARK, as CPython allows
                } else { _ = try pop() }
            case .popMark:
                _ = try popMark()
            case .dup:
                try push(try top())

            // Numbers and constants
            case .none: try push(.none)
            case .newtrue: try push(.bool(true))
            case .newfalse: try push(.bool(false))
            case .binint: try push(.int(Int(try le(Int32.self))))
            case .binint1: try push(.int(Int(try u8())))
            case .binint2: try push(.int(Int(try le(UInt16.self))))
            case .long1:
                let n = Int(try u8())
                try push(try long(try take(n)))
            case .long4:
                let n = try length(Int32.self)
                try push(try long(try take(n)))
            case .binfloat: // big-endian
                let b = try le(UInt64.self)
                try push(.float(Double(bitPattern: b.byteSwapped)))
            case .int:
                let s = try line()
                if s == "01" { try push(.bool(true)) } else if s == "00" { try push(.bool(false)) }
                else if let v = Int(s.trimmingSpaces) { try push(.int(v)) }
                else { throw fail("INT operand '\(s.prefix(40))' is not a number") }
            case .long:
                var s = try line().trimmingSpaces
                if s.hasSuffix("L") { s.removeLast() }
                guard let v = Int(s) else {
                    if s.count < 4096, s.allSatisfy({ $0.isNumber || $0 == "-" }) { try push(.bigInt(Array(s.utf8))); break }
                    throw fail("LONG operand '\(s.prefix(40))' is not a number")
                }
                try push(.int(v))
            case .float:
                let s = try line()
                guard let d = Double(s.trimmingSpaces) else { throw fail("FLOAT operand '\(s.prefix(40))' is not a number") }
                try push(.float(d))

            // Strings and bytes
            case .binunicode:
                try push(.string(utf8(try take(try length(UInt32.self)))))
            case .shortBinunicode:
                try push(.string(utf8(try take(Int(try u8())))))
            case .binunicode8:
                try push(.string(utf8(try take(try length(UInt64.self)))))
            case .unicode: // raw-unicode-escape text
                try push(.string(PickleText.rawUnicodeEscape(try line())))
            case .binstring: // Python 2 str; bytes of latin-1
                try push(.string(PickleText.latin1(try take(try length(Int32.self)))))
            case .shortBinstring:
                try push(.string(PickleText.latin1(try take(Int(try u8())))))
            case .string: // quoted repr
                try push(.string(try PickleText.quoted(try line()) ?? { throw fail("STRING operand is not a quoted string") }()))
            case .binbytes:
                try push(.bytes(Array(try take(try length(UInt32.self)))))
            case .shortBinbytes:
                try push(.bytes(Array(try take(Int(try u8())))))
            case .binbytes8, .bytearray8:
                try push(.bytes(Array(try take(try length(UInt64.self)))))
            case .nextBuffer:
                throw fail("uses out-of-band buffers (protocol 5 NEXT_BUFFER), which a file cannot carry")
            case .readonlyBuffer:
                _ = try top()

            // Containers
            case .emptyTuple: try push(try tuple([]))
            case .tuple1: let a = try pop(); try push(try tuple([a]))
            case .tuple2: let b = try pop(); let a = try pop(); try push(try tuple([a, b]))
            case .tuple3: let c = try pop(); let b = try pop(); let a = try pop(); try push(try tuple([a, b, c]))
            case .tuple: try push(try tuple(try popMark()))
            case .emptyList: try push(.list(try track(PickleList())))
            case .list: try push(.list(try track(PickleList(try popMark()))))
            case .emptyDict: try push(.dict(try track(PickleDict())))
            case .dict:
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items") }
                let d = try track(PickleDict())
                var i = 0
                while i < items.count { d.set(items[i], items[i + 1]); i += 2 }
                try push(.dict(d))
            case .emptySet: try push(.set(try track(PickleList())))
            case .frozenset: try push(.set(try track(PickleList(try popMark()))))
            case .append:
                let v = try pop()
                try append([v], to: try top())
            case .appends:
                let items = try popMark()
                try append(items, to: try top())
            case .additems:
                let items = try popMark()
                guard case .set(let s) = try top() else { throw fail("ADDITEMS onto a \(try top().kindName)") }
                s.items.append(contentsOf: items)
            case .setitem:
                let v = try pop(); let k = try pop()
                try setItems([k, v], on: try top())
            case .setitems:
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                try setItems(items, on: try top())

            // Memo
            case .binput: try memoPut(Int(try u8()), try top())
            case .longBinput: try memoPut(Int(try le(UInt32.self)), try top())
            case .memoize: try memoPut(memo.count, try top())
            case .put:
                guard let i = Int(try line()) else { throw fail("PUT index is not a number") }
                try memoPut(i, try top())
            case .binget: try push(try memoGet(Int(try u8())))
            case .longBinget: try push(try memoGet(Int(try le(UInt32.self))))
            case .get:
                guard let i = Int(try line()) else { throw fail("GET index is not a number") }
                try push(try memoGet(i))

            // Globals and objects
            case .global:
                let module = try line(), name = try line()
                try push(.global(try resolveGlobal(module: module, name: name)))
            case .stackGlobal:
                let n = try pop(), m = try pop()
                guard case .string(let name) = n, case .string(let module) = m else {
                    throw fail("STACK_GLOBAL needs two strings, got \(m.kindName) and \(n.kindName)")
                }
                try push(.global(try resolveGlobal(module: module, name: name)))
            case .ext1, .ext2, .ext4:
                throw fail("uses the copyreg extension registry (EXT opcodes), which can name any callable; refusing")
            case .reduce:
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case .newobj:
                let args = try pop(), cls = try pop()
                try push(try newObject(cls, args))
            case .newobjEx:
                _ = try pop()
                let args = try pop(), cls = try pop()
                try push(try newObject(cls, args))
            case .inst:
                let module = try line(), name = try line()
                let g = try resolveGlobal(module: module, name: name)
                let args = try popMark()
                try push(try newObject(.global(g), try tuple(args)))
            case .obj:
                let items = try popMark()
                guard let cls = items.first else { throw fail("OBJ without a class") }
                try push(try newObject(cls, try tuple(Array(items.dropFirst()))))
            case .build:
                let state = try pop()
                try build(try top(), state)
            case .binpersid:
                let pid = try pop()
                try push(try persistent(pid))
            case .persid:
                let pid = try line()
                try push(try persistent(.string(pid)))
            }
        }
    }

    func long(_ raw: UnsafeRawBufferPointer) throws -> PickleValue {
        if raw.isEmpty { return .int(0) }
        if raw.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            if raw.count < 8, raw[raw.count - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(raw.count)) }
            return .int(Int(Int64(bitPattern: v)))
        }
        return .bigInt(Array(raw))
    }

    func persistent(_ pid: PickleValue) throws -> PickleValue {
        guard let load = persistentLoad else { throw fail("has a persistent id but this pickle may not reference external data") }
        do { return try load(pid) } catch let e as WconvError {
            var e = e
            if e.kind == .invalidInput || e.kind == .unsafe { e.message = "pickle \(context): \(e.message) (byte \(opStart))" }
            throw e
        }
    }

    func append(_ items: [PickleValue], to target: PickleValue) throws {
        switch target {
        case .list(let l): l.items.append(contentsOf: items)
        case .set(let s): s.items.append(contentsOf: items)
        case .object(let o): o.listItems.append(contentsOf: items)
        default: throw fail("APPEND onto a \(target.kindName)")
        }
    }

    func setItems(_ items: [PickleValue], on target: PickleValue) throws {
        let d: PickleDict
        switch target {
        case .dict(let x): d = x
        case .object(let o):
            if o.dictItems == nil { o.dictItems = try track(PickleDict(typeName: o.global.qualifiedName)) }
            d = o.dictItems!
        default: throw fail("SETITEM on a \(target.kindName)")
        }
        var i = 0
        while i + 1 < items.count { d.set(items[i], items[i + 1]); i += 2 }
    }

    func build(_ target: PickleValue, _ state: PickleValue) throws {
        switch target {
        case .dict(let d): d.attributes = state          // OrderedDict `_metadata`
        case .object(let o):
            if let old = o.stateDict, case .dict(let new) = state {
                for (k, v) in zip(new.keys, new.values) { old.set(k, v) }
            } else { o.state = state }
        case .tensor, .list, .set: break                  // tensor `__dict__` / legacy set_ state: not needed for weights
        default: throw fail("BUILD on a \(target.kindName)")
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// Text operands of protocol 0/1 and Python-2 strings.
enum PickleText {
    static func latin1(_ raw: UnsafeRawBufferPointer) -> String {
        var s = String.UnicodeScalarView()
        for b in raw { s.append(Unicode.Scalar(b)) }
        return String(s)
    }

    /// `'...'` or `"..."` with Python escapes.
    static func quoted(_ text: String) -> String? {
        let t = text.trimmingSpaces
        guard t.count >= 2, let q = t.first, q == "'" || q == "\"", t.last == q else { return nil }
        return unescape(String(t.dropFirst().dropLast()), unicode: false)
    }

    static func rawUnicodeEscape(_ text: String) -> String { unescape(text, unicode: true) }

    static func unescape(_ s: String, unicode: Bool) -> String {
        var out = String.UnicodeScalarView()
        var it = Array(s.unicodeScalars)[...]
        while let c = it.popFirst() {
            guard c == "\\", let n = it.popFirst() else { out.append(c); continue }
            func hex(_ k: Int) -> Unicode.Scalar? {
                guard it.count >= k, let v = UInt32(String(String.UnicodeScalarView(it.prefix(k))), radix: 16) else { return nil }
                it = it.dropFirst(k)
                return Unicode.Scalar(v)
            }
            switch n {
            case "n" where !unicode: out.append("\n")
            case "t" where !unicode: out.append("\t")
            case "r" where !unicode: out.append("\r")
            case "\\" where !unicode: out.append("\\")
            case "'" where !unicode: out.append("'")
            case "\"" where !unicode: out.append("\"")
            case "x" where !unicode: if let h = hex(2) { out.append(h) } else { out.append(c); out.append(n) }
            case "u": if let h = hex(4) { out.append(h) } else { out.append(c); out.append(n) }
            case "U": if let h = hex(8) { out.append(h) } else { out.append(c); out.append(n) }
            default: out.append(c); out.append(n)
            }
        }
        return String(out)
    }
}
