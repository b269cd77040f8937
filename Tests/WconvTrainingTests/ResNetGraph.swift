import WconvGraph
@testable import WconvTraining

func resnet18Graph(width w: Int = 64, classes: Int = 1000, input: Int = 64, seed: UInt64 = 1) -> ModelGraph {
    SyntheticModels.resnet18(width: w, classes: classes, input: input, seed: seed)
}
