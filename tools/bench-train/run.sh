#!/usr/bin/env bash
# Training throughput, wconv beside PyTorch in the same run (design.md §7).
# usage: tools/bench-train/run.sh [size] [batch] [threads]      (builds wconv in release first)
# wconv trains a built-in ResNet-18 (`--synthetic resnet18`, torchvision's layout and names, random
# weights); PyTorch trains torchvision's resnet18(weights=None). Feature extraction is reported both
# ways: PyTorch's usual loop pays the frozen forward every epoch, wconv's cache pays it once.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-224}; BATCH=${2:-16}; THREADS=${3:-2}
swift build -c release --product wconv >/dev/null
PY="${WCONV_PY:-$(tools/refenv)}"
# Models: ARCHS="resnet18 resnet50 efficientnet_b0" (default resnet18). resnet18 is wconv's built-in
# synthetic network; the others are torchvision models (weights=None, random BatchNorm statistics)
# saved as state dicts into .build/bench/ at bench time and imported by wconv like any user file.
ARCHS=${ARCHS:-resnet18}
mkdir -p .build/bench
for ARCH in $ARCHS; do
if [ "$ARCH" = resnet18 ]; then
  W=$(.build/release/wconv bench train --synthetic resnet18 --size "$SIZE" --batch-size "$BATCH" --threads "$THREADS" --json)
else
  F=.build/bench/$ARCH.pth
  [ -f "$F" ] || "$PY" - "$ARCH" "$F" <<'GEN'
import sys, torch, torchvision
torch.manual_seed(0)
m = getattr(torchvision.models, sys.argv[1])(weights=None).eval()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
torch.save(m.state_dict(), sys.argv[2])
GEN
  W=$(.build/release/wconv bench train "$F" --batch-size "$BATCH" --threads "$THREADS" --json)
fi
T=$("$PY" tools/bench-train/train_torch.py --arch "$ARCH" --size "$SIZE" --batch "$BATCH" --threads "$THREADS")
"$PY" - "$W" "$T" "$ARCH" <<'PY'
import json, sys
w = json.loads(sys.argv[1])["images_per_second"]; t = json.loads(sys.argv[2]); ti = t["images_per_second"]
print(f"{sys.argv[3]} at {t['size']}, batch {t['batch']}, {t['threads']} threads (images/s, higher is better)")
rows = [("full fine-tune step", w["finetune"], ti["finetune"]),
        ("feature-extract step, uncached", w["feature-extract (uncached)"], ti["feature-extract (usual loop)"]),
        ("frozen forward (cache fill)", w["frozen forward (once per image)"], ti["frozen forward"])]
for name, a, b in rows:
    print(f"  {name:34s} wconv {a:8.1f}   torch {b:8.1f}   ratio {a / b:5.2f}")
ep = 10
print(f"  10-epoch feature extraction, s per 1000 images: wconv cached {1000 / w['frozen forward (once per image)']:.1f}"
      f"   torch usual loop {ep * 1000 / ti['feature-extract (usual loop)']:.1f}"
      f"   speed-up ×{(ep * 1000 / ti['feature-extract (usual loop)']) / (1000 / w['frozen forward (once per image)']):.1f}")
PY
done
