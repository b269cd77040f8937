import ArgumentParser
import Foundation
import Wconv

/// `wconv bench import FILE`: how long loading takes and how much memory it costs beyond the
/// memory-mapped file (tools/bench compares it with torch.load and safetensors in the same run).
struct BenchImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Measures load time and peak memory of reading a model file.",
        discussion: "Times ModelFile.load (sniff, parse, validate, build zero-copy views) over --repeat runs. Memory: peak RSS (VmHWM), and the growth of anonymous (non-file) memory, i.e. what loading costs beyond the mapping. --touch also reads one byte of every page, including page-in in the time.")

    @Argument(help: "Model file.") var file: String
    @Option(help: "Number of loads; min and median are reported.") var `repeat` = 5
    @Flag(help: "Touch every page of every tensor (include page-in in the time).") var touch = false
    @OptionGroup var checkpoint: StateDictKeyOption
    @OptionGroup var stdout: JSONFlag

    func validate() throws {
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
    }

    func run() throws {
        let format = try ModelFile.sniff(path: file)
        let baseline = ProcStatus.read()
        var times: [Double] = []
        var anonDelta = 0, rssDelta = 0
        var tensors = 0, bytes = 0
        var checksum: UInt64 = 0
        for i in 0..<`repeat` {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let bundle = try ModelFile.load(path: file, key: checkpoint.key)
            if touch { checksum &+= Self.touchPages(bundle) }
            let t1 = DispatchTime.now().uptimeNanoseconds
            times.append(Double(t1 - t0) / 1e9)
            if i == 0 {
                let after = ProcStatus.read()
                anonDelta = after.rssAnon - baseline.rssAnon
                rssDelta = after.rss - baseline.rss
                tensors = bundle.tensors.count
                bytes = InspectReport.storedBytes(bundle)
            }
        }
        let peak = ProcStatus.read().hwm
        let sorted = times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        if stdout.json {
            printJSON(.object([
                ("file", .string(file)), ("format", .string(format.rawValue)), ("tensors", .int(tensors)), ("bytes", .int(bytes)),
                ("repeat", .int(`repeat`)), ("touch", .bool(touch)),
                ("load_seconds", .object([("min", .double(sorted[0])), ("median", .double(median)), ("all", .array(times.map { .double($0) }))])),
                ("peak_rss_bytes", .int(peak)), ("baseline_rss_bytes", .int(baseline.rss)),
                ("rss_delta_bytes", .int(rssDelta)), ("anon_delta_bytes", .int(anonDelta)),
                ("kernels", KernelReport.json(loadBLAS: false)),
            ]))
        } else {
            print(KernelReport.lines(loadBLAS: false).joined(separator: "\n"))
            print("""
            \(file): \(format.rawValue), \(tensors) tensors, \(Fmt.bytes(bytes))
            load (\(`repeat`)×\(touch ? ", touching every page" : "")): min \(Fmt.ms(sorted[0])), median \(Fmt.ms(median))
            peak RSS \(Fmt.bytes(peak)) (process baseline before loading \(Fmt.bytes(baseline.rss)))
            first load: RSS +\(Fmt.bytes(rssDelta)), beyond the mapping (anonymous memory) +\(Fmt.bytes(anonDelta))
            """)
        }
        if checksum == 1 { printErr("") }  // keeps the touch loop from being optimised away
    }

    /// Reads one byte per 4 KiB page of every distinct storage.
    static func touchPages(_ bundle: TensorBundle) -> UInt64 {
        var seen = Set<ObjectIdentifier>()
        var sum: UInt64 = 0
        for t in bundle.tensors.values where seen.insert(ObjectIdentifier(t.storage)).inserted {
            let p = t.storage.bytes.assumingMemoryBound(to: UInt8.self)
            var i = 0
            while i < t.storage.byteCount { sum &+= UInt64(p[i]); i += 4096 }
        }
        return sum
    }
}
