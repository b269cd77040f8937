import OrderedCollections
import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest

/// wconv's trainer against PyTorch on the same weights, batches and hyperparameters
/// (tools/fixtures/training/gen_trajectory.py): every mode, SGD and AdamW, BN frozen or training.
final class TrajectoryTests: XCTestCase {
    func testMatchesPyTorch() throws {
        let f = try XCTUnwrap(Fixture.json("trajectory.json") as? [String: Any])
        let initValues = f["init"] as! [String: Any], shapes = f["shapes"] as! [String: Any]
        var g = tinyGraph(classes: 3)
        for (k, v) in initValues { g.parameters[k] = Tensor(shape: ints(shapes[k]), floats: floats(v)) }
        let labels = ints(f["labels"])
        let data = try TensorDataset(images: Tensor(shape: [labels.count, 3, 8, 8], floats: floats(f["images"])), labels: labels,
                                     classes: ["x", "y", "z"], name: "trajectory")
        let cases = f["cases"] as! [[String: Any]]
        XCTAssertEqual(cases.count, 9)
        for c in cases {
            var cfg = TrainingConfig()
            cfg.mode = TrainingMode(rawValue: c["mode"] as! String)!
            cfg.optimizer = c["optimizer"] as! String
            cfg.bn = BatchNormPolicy(rawValue: c["bn"] as! String)!
            cfg.epochs = c["epochs"] as! Int
            cfg.lr = c["lr"] as! Double
            cfg.backboneLR = c["backbone_lr"] as? Double
            cfg.weightDecay = c["weight_decay"] as! Double
            if let geo = c["geometric"] as? [Double] { cfg.layerLR = .geometric(base: geo[0], max: geo[1]) }
            cfg.batchSize = f["batch"] as! Int
            cfg.schedule = "constant"
            cfg.head = "keep"
            cfg.shuffle = false
            cfg.threads = 1
            cfg.groups = "stem=a|n,block=c,head=z"
            let t = try Trainer(graph: g, config: cfg, train: data, val: nil, augment: false, log: { _ in })
            t.computeBaseline = false
            let r = try t.run()
            XCTAssertNil(r.stopped)
            let label = "\(c["mode"]!) \(c["optimizer"]!) bn \(c["bn"]!)\(c["geometric"] is NSNull ? "" : " geometric")"
            for (k, v) in c["expected"] as! [String: Any] {
                let err = relErr(r.graph.parameters[k]!.floats(), doubles(v))
                XCTAssertLessThan(err, 1e-4, "\(label): \(k) differs from PyTorch by \(err)")
            }
        }
    }
}
