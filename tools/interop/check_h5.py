#!/usr/bin/env python3
"""Interop check for wconv's Keras .h5 writer.

The Swift test KerasGraphRoundTripTests.testExportForInterop writes .build/interop/keras/<model>.h5
(graph imported from fixtures/keras, exported by KerasH5Writer). This script checks, per model:
  1. h5py reads the file and every weight equals fixtures/keras/<model>.expected.json exactly
     (Keras layout, Keras order, the legacy save_weights layout);
  2. Keras 3 (if importable): the architecture from the fixture config, `load_weights(x.h5)`,
     predicts the fixture probe with Keras's original output;
  3. tf_keras (with --tf-keras PYTHON, a python that has tf_keras): the same for the tf_keras
     models.
Run: swift test --filter KerasGraphRoundTripTests/testExportForInterop &&
     KERAS_BACKEND=jax $(tools/refenv) tools/interop/check_h5.py [--tf-keras PYTHON]
Exit status 0 when every check passed, 1 otherwise.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(ROOT, "fixtures", "keras")
OUT = os.path.join(ROOT, ".build", "interop", "keras")
KERAS3 = ["func_small", "small", "resnet_style", "nested"]
TFK = ["tfk_mixed", "tfk_seq"]


def expected(m):
    with open(os.path.join(FIX, f"{m}.expected.json")) as f:
        return json.load(f)


def probe(e):
    import numpy as np
    p = e["probe"]
    x = np.array(p["nhwc"], dtype="float32").reshape(p["nhwc_shape"])
    y = np.array(p["output"], dtype="float32").reshape(p["output_shape"])
    return x, y


def check_h5py(m):
    import h5py
    import numpy as np
    e = expected(m)
    path = os.path.join(OUT, f"{m}.h5")
    failures = []
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        got = {}
        for layer in names:
            g = f[layer]
            wn = g.attrs["weight_names"]
            for w in wn:
                w = w.decode() if isinstance(w, bytes) else w
                short = w[len(layer) + 1:] if w.startswith(layer + "/") else w.split("/")[-1]
                got[f"{layer}/{short.split(':')[0]}"] = np.asarray(g[w])
    for k, v in e["weights"].items():
        want = np.array(v["values"], dtype=v.get("dtype", "float32")).reshape(v["shape"])
        if k not in got:
            failures.append(f"{m}: {k} missing")
        elif got[k].shape != want.shape or not np.array_equal(got[k].astype(want.dtype), want):
            failures.append(f"{m}: {k} differs (shape {got[k].shape} vs {want.shape})")
    extra = set(got) - set(e["weights"])
    if extra:
        failures.append(f"{m}: unexpected weights {sorted(extra)}")
    print(f"h5py     {m}: {len(got)} weights {'OK' if not failures else 'FAIL'}")
    return failures


def check_keras3(m):
    import numpy as np
    import keras
    e = expected(m)
    with open(os.path.join(FIX, f"{m}.config.json")) as f:
        model = keras.models.model_from_json(f.read())
    model.load_weights(os.path.join(OUT, f"{m}.h5"))
    x, y = probe(e)
    out = np.asarray(model.predict(x, verbose=0))
    err = float(np.max(np.abs(out - y)))
    ok = err <= 1e-6
    print(f"keras {keras.__version__} {m}: load_weights + predict, max |Δ| = {err:.3g} {'OK' if ok else 'FAIL'}")
    return [] if ok else [f"{m}: Keras 3 prediction differs by {err}"]


def check_tf_keras(m):
    import numpy as np
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tf_keras
    e = expected(m)
    # The architecture only (fresh random weights), then wconv's weights.
    ref = tf_keras.models.load_model(os.path.join(FIX, f"{m}.h5"), compile=False)
    model = tf_keras.models.model_from_json(ref.to_json())
    model.load_weights(os.path.join(OUT, f"{m}.h5"))
    x, y = probe(e)
    out = model.predict(x, verbose=0)
    err = float(np.max(np.abs(out - y)))
    ok = err <= 1e-6
    print(f"tf_keras {tf_keras.__version__} {m}: load_weights + predict, max |Δ| = {err:.3g} {'OK' if ok else 'FAIL'}")
    return [] if ok else [f"{m}: tf_keras prediction differs by {err}"]


def main():
    if "--tf-mode" in sys.argv:
        fails = [f for m in TFK for f in check_tf_keras(m)]
        print("\n".join(fails))
        sys.exit(1 if fails else 0)
    missing = [m for m in KERAS3 + TFK if not os.path.exists(os.path.join(OUT, f"{m}.h5"))]
    if missing:
        print(f"missing exports {missing}: run `swift test --filter KerasGraphRoundTripTests/testExportForInterop` first")
        sys.exit(1)
    fails = []
    for m in KERAS3 + TFK:
        fails += check_h5py(m)
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras  # noqa: F401
        have_keras = True
    except Exception as exc:  # keras is optional for the h5py part
        print(f"keras not importable ({exc}); skipping Keras 3 load_weights checks")
        have_keras = False
    if have_keras:
        for m in KERAS3:
            fails += check_keras3(m)
    if "--tf-keras" in sys.argv:
        py = sys.argv[sys.argv.index("--tf-keras") + 1]
        r = subprocess.run([py, os.path.abspath(__file__), "--tf-mode"])
        if r.returncode != 0:
            fails.append("tf_keras checks failed")
    for f in fails:
        print("FAIL", f)
    print("interop keras h5:", "OK" if not fails else f"{len(fails)} failure(s)")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
