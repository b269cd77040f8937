#!/usr/bin/env python3
"""onnxruntime's side of tools/bench-realworld: times one model with the input shapes wconv used.

  run_ort.py CASE MODEL.onnx WCONV.json CASEDIR ITERS THREADS     prints one JSON line

Inputs: the shapes of wconv's `bench run --json` (`inputShapes`), seeded values of each input's
dtype from the model (floats standard normal; integers in the range of the case's own input file,
so index inputs stay valid). One warm-up run, then the median and the best of ITERS runs, sequential execution
with THREADS intra-op threads (wconv's --threads).
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    case, path, wconv_json, case_dir, iters, threads = sys.argv[1:7]
    iters, threads = int(iters), int(threads)
    w = json.load(open(wconv_json))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # no warnings about unused initializers
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    shapes = list(w["inputShapes"].values())
    manifest = json.load(open(os.path.join(case_dir, "case.json")))
    feeds, dtypes, used = {}, {}, {}
    for k, i in enumerate(sess.get_inputs()):
        # Inputs by name, else by position (state dicts call theirs "input").
        shape = w["inputShapes"].get(i.name, shapes[k] if k < len(shapes) else None)
        ref = np.load(os.path.join(case_dir, manifest["inputs"][k]["file"])) if k < len(manifest["inputs"]) else None
        if "int" in i.type:
            hi = int(ref.max()) + 1 if ref is not None else 2
            v = rng.integers(0, hi, shape).astype(np.int64 if "int64" in i.type else np.int32)
        else:
            v = rng.standard_normal(shape).astype(np.float32)
        feeds[i.name], dtypes[i.name], used[i.name] = v, str(v.dtype), list(v.shape)
    sess.run(None, feeds)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t)
    times.sort()
    print(json.dumps({"case": case, "shapes": used, "dtypes": dtypes, "wconv_ms": w["medianSeconds"] * 1e3,
                      "ort_ms": times[len(times) // 2] * 1e3,
                      "wconv_best_ms": w["bestSeconds"] * 1e3, "ort_best_ms": times[0] * 1e3, "ort_version": ort.__version__, "threads": threads}))


if __name__ == "__main__":
    main()
