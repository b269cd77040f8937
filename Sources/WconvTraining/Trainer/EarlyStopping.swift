import Foundation
import OrderedCollections
import WconvTensor

/// The weights a run hands back: the best seen by the validation metric (ties go to the lower
/// validation loss), including the feature-extraction baseline a fine-tuning run computes first,
/// so a run never returns less than it has already found.
struct BestModel {
    /// The selection metric (accuracy; macro AUC for multi-label data).
    var score: Double
    var loss: Double?
    /// 0-based epoch; `BestModel.baselineEpoch` for the feature-extraction baseline.
    var epoch: Int
    var parameters: OrderedDictionary<String, Tensor>

    static let baselineEpoch = -1

    /// True when (score, loss) beats this model: a higher score, or the same score at a lower loss.
    func isBeaten(by score: Double, loss: Double?) -> Bool {
        if score != self.score { return score > self.score }
        guard let l = loss, let mine = self.loss else { return false }
        return l < mine
    }

    /// "epoch 4" or "the feature-extraction baseline".
    var label: String { epoch == Self.baselineEpoch ? "the feature-extraction baseline" : "epoch \(epoch + 1)" }
}

/// `--patience N`: ends the run after N epochs in a row without a new best validation metric.
public struct EarlyStopping: Sendable {
    public let patience: Int
    public private(set) var epochsWithoutImprovement = 0

    public init(patience: Int) { self.patience = patience }

    /// Records one epoch; true when the run should stop.
    public mutating func record(improved: Bool) -> Bool {
        epochsWithoutImprovement = improved ? 0 : epochsWithoutImprovement + 1
        return epochsWithoutImprovement >= patience
    }
}

/// The fine-tuning guard: the seed's symptom is fine-tuning ending below frozen features. It
/// advises only once the run has had its chance to recover: from half the epochs on, with two
/// consecutive epochs below the baseline by more than the margin, and the validation trend not
/// rising (least-squares slope of the last three epochs ≤ 0).
public enum BaselineGuard {
    /// Whether the guard trips after `scores.count` completed epochs of `totalEpochs`.
    public static func trips(scores: [Double], totalEpochs: Int, baseline: Double, margin: Double) -> Bool {
        let done = scores.count
        guard done >= 2, done >= (totalEpochs + 1) / 2 else { return false }
        let lastTwo = scores.suffix(2)
        guard lastTwo.allSatisfy({ $0 < baseline - margin }) else { return false }
        return !trendRising(scores)
    }

    /// Least-squares slope of the last three values (two when only two exist) is positive.
    public static func trendRising(_ scores: [Double]) -> Bool {
        let y = Array(scores.suffix(3))
        guard y.count >= 2 else { return false }
        let n = Double(y.count)
        let mx = (n - 1) / 2, my = y.reduce(0, +) / n
        var num = 0.0, den = 0.0
        for (i, v) in y.enumerated() { num += (Double(i) - mx) * (v - my); den += (Double(i) - mx) * (Double(i) - mx) }
        return num / den > 1e-12
    }
}

/// Why a run ended before its last epoch.
public enum RunStop: Sendable, Equatable {
    /// A guard rail fired (loss not finite, fine-tuning below the baseline): advice, with the cause.
    case guardRail(String)
    /// `--patience` ran out: an ordinary end.
    case earlyStopping(String)

    public var message: String {
        switch self { case .guardRail(let m), .earlyStopping(let m): return m }
    }
}

extension Trainer {
    /// The validation figure that best epoch, early stopping and the guard compare
    /// (`selectionScore`: accuracy, or macro AUC for multi-label data), named and formatted.
    var metricName: String { multiLabel != nil ? "macro AUC" : "accuracy" }

    func scoreText(_ v: Double) -> String { multiLabel != nil ? fmt(v, 4) : fmt(v * 100, 1) + "%" }

    /// Puts the weights the run hands back into `graph` and says which they are (nil when no
    /// epoch completed and there is nothing worth handing back): the best seen with `restoreBest`
    /// or whenever a guard fired (advice never throws work away), otherwise the last epoch's.
    func keepWeights(stop: RunStop?) -> String? {
        let guarded: Bool = { if case .guardRail = stop { return true } else { return false } }()
        if let b = best, config.restoreBest || guarded {
            for (k, v) in b.parameters { graph.parameters[k] = v }
            let desc = "\(b.label) (best validation \(metricName) \(scoreText(b.score)))"
            guard let last = history.last, b.epoch != history.count - 1 else { return desc }
            return desc + (b.epoch == BestModel.baselineEpoch ? ", which no fine-tuning epoch beat" : ", not the last epoch (\(last.epoch))")
        }
        if guarded {
            // No validation data: the last epoch that finished, not the partial one that failed.
            guard let l = lastCompleted else { return nil }
            for (k, v) in l.parameters { graph.parameters[k] = v }
            return "epoch \(l.epoch + 1), the last that completed (no validation data to pick a best)"
        }
        guard let last = history.last else { return nil }
        return "epoch \(last.epoch), the last" + (best == nil ? "" : " (--no-restore-best)")
    }

    /// The baseline guard's advice, with the likely cause and the fix.
    func baselineGuardMessage(epoch e: Int, baseline b: Double) -> String {
        let va = history.last.flatMap { selectionScore($0) } ?? .nan
        let headLR = plan.groupLR[plan.grouping.head.name] ?? config.lr
        let bbLR = plan.grouping.backbone.compactMap { plan.groupLR[$0.name] }.max() ?? 0
        let cause = bbLR > 0 && headLR / bbLR < 10
            ? "the backbone's learning rate \(sci(bbLR)) is only \(fmt(headLR / bbLR, 1))× below the head's \(sci(headLR)), destroying the pretrained features. Fix: --backbone-lr \(sci(headLR / 10)) or lower (10–100× below the head)."
            : "the backbone adapts too fast for this much data (backbone LR \(sci(bbLR)), head \(sci(headLR))). Fix: lower --backbone-lr further, use --mode progressive, or keep --mode feature-extract."
        return "epoch \(e + 1) of \(config.epochs): validation \(metricName) \(scoreText(va)) is below the feature-extraction baseline \(scoreText(b)) for two epochs and not rising. Likely cause: " + cause
    }
}
