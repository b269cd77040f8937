import ArgumentParser
import Foundation
import Wconv

/// `--distributed` and its companions: data-parallel training over MPI ranks (docs/scale-out.md).
struct DistributedOptions: ParsableArguments {
    @Option(help: "auto | mpi | none. Data-parallel training over MPI ranks (`mpirun -np N wconv finetune …`); auto: when started by mpirun or srun.") var distributed: String = "auto"
    @Flag(name: .customLong("sync-bn"), help: "All-reduce BatchNorm batch statistics across ranks (torch's SyncBatchNorm); not yet supported.") var syncBN = false
    @Option(name: .customLong("collective-timeout"), help: "Seconds a rank waits in one collective before it ends the job (a rank that hangs).") var collectiveTimeout: Double = Communicator.defaultTimeout

    func mode() throws -> DistributedMode {
        guard let mode = DistributedMode(rawValue: distributed) else { throw ValidationError("--distributed '\(distributed)': use auto, mpi or none") }
        return mode
    }

    func validate() throws {
        _ = try mode()
        if syncBN { throw ValidationError("--sync-bn is not yet supported: with --bn train each rank normalises with its own shard's batch statistics; use --bn frozen (the transfer default) for results independent of the rank count") }
    }

    /// Starts MPI when asked or launched under it and quiets every rank but 0 (errors still
    /// print, naming the rank).
    func start() throws -> DataParallel {
        let comm = try Communicator.start(try mode(), timeout: collectiveTimeout)
        if comm.usesMPI { Console.rank = comm }
        return DataParallel(comm)
    }

    /// Refuses what data parallelism cannot do (yet) and says how the work is split.
    func check(_ config: TrainingConfig, _ parallel: DataParallel) throws {
        guard parallel.isDistributed else { return }
        let n = parallel.comm.size
        if config.mmdWeight > 0 {
            throw WconvError(.usage, "--mmd-weight is not supported under data parallelism (the MMD of a global batch is not a sum over ranks' shards); run MMD adaptation in one process")
        }
        if config.batchSize < n {
            throw WconvError(.usage, "--batch-size \(config.batchSize) is the global batch, split over \(n) ranks: give at least \(n)")
        }
        stderrLine("data parallel: \(n) ranks, global batch \(config.batchSize) (\(config.batchSize / n)–\((config.batchSize + n - 1) / n) per rank), \(config.threads) threads each")
        if config.bn == .train || (config.bn == .auto && config.mode != .featureExtract) {
            stderrLine("note: --bn train under \(n) ranks normalises each rank's shard with its own batch statistics; running statistics follow rank 0 (as DDP's broadcast_buffers)")
        }
    }
}
