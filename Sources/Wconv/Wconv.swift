// The library product: one import for users of the Swift API.
@_exported import WconvTensor
@_exported import WconvFormats
@_exported import WconvGraph
@_exported import WconvRuntime
@_exported import WconvTraining
@_exported import WconvText

/// The tool's version, recorded in provenance.
public let wconvVersion = "0.1.0"
