import WconvGraph
import WconvTensor
import WconvText

/// What `finetune` and `plan` share for a text model: the data read and tokenized with the model's
/// tokenizer, the recipe fitted to it, and the graph with its classification head.
public struct TextJob {
    public var model: TextTrainingModel
    public var train: TokenizedTextSet
    public var val: TokenizedTextSet?
    public var fit: TextFit
    /// The model with transformers' head for the training classes.
    public var graph: ModelGraph
    /// `fit.config` with the head in place (`head = keep` for the trainer).
    public var config: TrainingConfig

    /// `val` is a file read against the training classes; `valSplit` holds out a seeded, stratified
    /// fraction of `data` instead.
    public static func prepare(_ model: TextTrainingModel, data: String, val: String?, valSplit: Double?, columns: TextColumns,
                               maxLength requested: Int?, config flags: TrainingConfig, defaulted: DataFit.Defaulted) throws -> TextJob {
        if val != nil && valSplit != nil { throw WconvError(.usage, "give either --val FILE or --val-split, not both") }
        let tokenizer = try WordPieceTokenizer(model: model.weights)
        let maxLength = try TextFit.maxLength(requested, model: model)
        let all = try TextDataset.read(data, columns: columns)
        var trainData = all, valData: TextDataset?
        if let v = val { valData = try TextDataset.read(v, columns: columns, classes: all.classes) }
        if let f = valSplit { (trainData, valData) = try all.split(fraction: f, seed: flags.seed) }
        let train = try TokenizedTextSet(trainData, tokenizer: tokenizer, maxLength: maxLength)
        let valSet = try valData.map { try TokenizedTextSet($0, tokenizer: tokenizer, maxLength: maxLength) }
        let fit = try TextFit.resolve(model: model, config: flags, defaulted: defaulted, maxLength: maxLength, train: train, val: valSet)
        var config = fit.config
        let graph = try TextHead.attach(model, classes: train.classes, seed: config.seed, keep: config.head == "keep")
        config.head = "keep"
        return TextJob(model: model, train: train, val: valSet, fit: fit, graph: graph, config: config)
    }
}
