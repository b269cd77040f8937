import WconvRuntime

/// torch's SyncBatchNorm over a `Communicator`: BatchNorm layers in batch-statistics mode
/// normalise every rank's shard with the mean and variance of the whole global batch, and their
/// backward uses the global Σdy and Σdy·x̂, so N ranks compute what one process computes on the
/// global batch (`docs/scale-out.md`).
///
/// One all-reduce per BatchNorm layer in forward (count, Σx, Σx², in f64) and one in backward.
/// The backward sums are weighted: each rank backpropagates the gradient of its own shard's mean
/// loss, whose share of the global mean is `localWeight` / Σ weights (see `DataParallel.reduce`),
/// so a rank contributes its sums × `localWeight` and reads the total ÷ `localWeight` back, in
/// the units of its own loss. With equal shards this is torch's plain sum.
public final class SyncBatchNorm: BatchNormSync {
    /// Sums a buffer over all ranks in place; the text says what it is, for error messages.
    let sum: (UnsafeMutableBufferPointer<Double>, String) throws -> Void
    /// This rank's loss weight for the current step (its shard's sample count, or class-weight sum).
    public var localWeight = 1.0
    /// False while a rank with an empty shard runs a placeholder sample to join the collectives:
    /// its statistics and gradients then count for nothing.
    public var contributes = true

    /// Over the ranks of `comm`.
    public convenience init(_ comm: Communicator) { self.init { try comm.allreduceSum($0, what: $1) } }

    /// Over any set of replicas, given their in-place sum.
    public init(sum: @escaping (UnsafeMutableBufferPointer<Double>, String) throws -> Void) { self.sum = sum }

    public func allReduce(_ values: UnsafeMutableBufferPointer<Double>, node: String, phase: BatchNormSyncPhase) throws {
        let w = contributes ? localWeight : 0
        switch phase {
        case .statistics:
            if !contributes { values.update(repeating: 0) }
            try sum(values, "BatchNorm statistics of '\(node)'")
        case .gradients:
            for i in values.indices { values[i] *= w }
            try sum(values, "BatchNorm gradient sums of '\(node)'")
            // A rank whose loss has no weight gets no gradient from the reduction anyway.
            let inv = w > 0 ? 1 / w : 0
            for i in values.indices { values[i] *= inv }
        }
    }
}
