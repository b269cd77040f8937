/// What a data-parallel trainer supplies so that BatchNorm layers computing batch statistics
/// (`BatchNormMode.train`) use those of the global batch, as torch's SyncBatchNorm does: the
/// runtime hands over this replica's per-channel sums and continues with their totals over all
/// replicas. Every replica calls it for the same nodes in the same order (forward order, then
/// backward order), so implementations can use one collective per call.
public protocol BatchNormSync: AnyObject {
    /// Replaces `values` by their element-wise sums over all replicas.
    /// - `.statistics` (forward): `[count, Σx (c values), Σx² (c)]`, count being the values per channel.
    /// - `.gradients` (backward, when the BN input needs a gradient): `[Σdy (c), Σdy·x̂ (c)]`.
    func allReduce(_ values: UnsafeMutableBufferPointer<Double>, node: String, phase: BatchNormSyncPhase) throws
}

/// Which sums a `BatchNormSync` call carries.
public enum BatchNormSyncPhase: Sendable {
    case statistics
    case gradients
}
