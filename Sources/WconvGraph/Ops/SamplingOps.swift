import WconvTensor

/// Resampling ops (docs/adding-an-op.md).
public enum SamplingOps {
    static let schemas: [OpSchema] = []
}
