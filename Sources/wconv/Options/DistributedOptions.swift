import ArgumentParser
import Foundation
import Wconv

/// `--distributed` and its companions: data-parallel training over MPI ranks (docs/scale-out.md).
struct DistributedOptions: ParsableArguments {
    @Option(help: "auto | mpi | none. Data-parallel training over MPI ranks (`mpirun -np N wconv finetune …`); auto: when started by mpirun or srun.") var distributed: String = "auto"
    @Flag(name: .customLong("sync-bn"), help: "With --bn train under several ranks: normalise with the whole global batch's statistics (torch's SyncBatchNorm) instead of each rank's shard's.") var syncBN = false
    @Option(name: .customLong("collective-timeout"), help: "Seconds a rank waits in one collective before it ends the job (a rank that hangs).") var collectiveTimeout: Double = Communicator.defaultTimeout

    func mode() throws -> DistributedMode {
        guard let mode = DistributedMode(rawValue: distributed) else { throw ValidationError("--distributed '\(distributed)': use auto, mpi or none") }
        return mode
    }

    func validate() throws {
        _ = try mode()
    }

    /// `--sync-bn` synchronises batch statistics, so it needs `--bn train` (checked by the command,
    /// which holds both groups).
    func check(bn: BatchNormPolicy) throws {
        if syncBN && bn != .train {
            throw ValidationError("--sync-bn makes BatchNorm use the global batch's statistics, so it needs --bn train (batch statistics in every trainable layer); --bn \(bn.rawValue) \(bn == .auto ? "chooses per layer group" : "uses the running statistics, which need no synchronisation"). Add --bn train or drop --sync-bn")
        }
    }

    /// Starts MPI when asked or launched under it and quiets every rank but 0 (errors still
    /// print, naming the rank).
    func start() throws -> DataParallel {
        let comm = try Communicator.start(try mode(), timeout: collectiveTimeout)
        if comm.usesMPI { Console.rank = comm }
        return DataParallel(comm, syncBatchNorm: syncBN)
    }

    /// Refuses what data parallelism cannot do (yet) and says how the work is split.
    func check(_ config: TrainingConfig, _ parallel: DataParallel) throws {
        guard parallel.isDistributed else { return }
        let n = parallel.comm.size
        if config.batchSize < n {
            throw WconvError(.usage, "--batch-size \(config.batchSize) is the global batch, split over \(n) ranks: give at least \(n)")
        }
        stderrLine("data parallel: \(n) ranks, global batch \(config.batchSize) (\(config.batchSize / n)–\((config.batchSize + n - 1) / n) per rank), \(config.threads) threads each")
        if syncBN {
            stderrLine("BatchNorm: batch statistics of the whole global batch (--sync-bn: one all-reduce per layer in forward and in backward)")
        } else if config.bn == .train || (config.bn == .auto && config.mode != .featureExtract) {
            stderrLine("note: --bn train under \(n) ranks normalises each rank's shard with its own batch statistics; running statistics follow rank 0 (as DDP's broadcast_buffers). --sync-bn uses the global batch's (with --bn train)")
        }
    }
}
