"""Checks ONNX files exported by wconv with the real libraries: onnx.checker (full_check, with shape
inference) and onnxruntime. Where the exported model has a probe in fixtures/onnx/probes/ (same file
name as the fixture it was imported from), runs it in onnxruntime and compares with the probe output
the original model produced.

Run with:  $(tools/refenv) tools/interop/check_onnx.py [DIR]
DIR defaults to .build/interop/onnx, which `swift test --filter ONNXGraphRoundTripTests` fills
(and `--filter RecurrentOpTests` with the LSTM/GRU op fixtures, probed from fixtures/onnx/ops/probes).
Exit code 0 when every file passes, 1 otherwise.
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ATOL, RTOL = 1e-4, 1e-4


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "interop", "onnx")
    files = sorted(glob.glob(os.path.join(folder, "*.onnx")))
    if not files:
        print("no exported ONNX files in %s: run `swift test --filter ONNXGraphRoundTripTests` first" % folder)
        return 1
    failures = 0
    ort.set_default_logger_severity(3)
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            probe_path = os.path.join(ROOT, "fixtures", "onnx", "probes", name + ".json")
            if not os.path.exists(probe_path):  # the op fixtures of gen_ops.py (LSTM/GRU exports)
                probe_path = os.path.join(ROOT, "fixtures", "onnx", "ops", "probes", name + ".json")
            if os.path.exists(probe_path):
                probe = json.load(open(probe_path))
                feeds = {k: np.array(v["values"], dtype=v["dtype"]).reshape(v["shape"]) for k, v in probe["inputs"].items()}
                outs = sess.run(None, feeds)
                worst = 0.0
                for o, got in zip(sess.get_outputs(), outs):
                    want = probe["outputs"][o.name]
                    ref = np.array(want["values"], dtype=np.float64).reshape(want["shape"])
                    if got.shape != ref.shape:
                        raise AssertionError("output %s shape %s, original %s" % (o.name, got.shape, ref.shape))
                    if not np.allclose(got.astype(np.float64), ref, atol=ATOL, rtol=RTOL):
                        raise AssertionError("output %s differs by up to %g" % (o.name, np.abs(got - ref).max()))
                    worst = max(worst, float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0)
                print("ok   %-32s checker + onnxruntime, outputs match the original (max |diff| %.2e)" % (name, worst))
            else:
                feeds = {}
                for i in sess.get_inputs():
                    shape = [d if isinstance(d, int) else 1 for d in i.shape]
                    dt = np.float32 if "float" in i.type else np.int64
                    feeds[i.name] = np.zeros(shape, dtype=dt)
                sess.run(None, feeds)
                print("ok   %-32s checker + onnxruntime (no reference output)" % name)
        except Exception as e:  # report every file, then fail
            failures += 1
            print("FAIL %-32s %s" % (name, str(e).splitlines()[0] if str(e) else type(e).__name__))
    print("%d of %d exported models passed" % (len(files) - failures, len(files)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
