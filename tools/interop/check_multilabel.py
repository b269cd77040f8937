#!/usr/bin/env python3
"""Interop check: wconv's multi-label exports load into the torchvision model with a Linear(…, L) head
and score the same in PyTorch.

Usage: $(tools/refenv) tools/interop/check_multilabel.py [DIR]
  DIR (default .build/interop/pth/multilabel) holds multilabel.pth, multilabel.safetensors and
  wconv_val.json (wconv's validation logits and macro AUC), written by
  `WCONV_INTEROP_OUT=.build/interop/pth swift test --filter MultiLabelTrainingTests` (tools/test does).
  Both exports are loaded with load_state_dict(strict) into the ResNet of
  tools/fixtures/training/gen_multilabel.py; torch's validation logits must equal wconv's, and
  sklearn's macro ROC AUC of them must equal wconv's and torch's own run of the recipe (0.03).
"""
import csv
import json
import os
import sys

try:
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file
    from sklearn.metrics import roc_auc_score
except ImportError as e:
    print(f"SKIP check_multilabel: {e.name} is not installed in the reference env")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "fixtures", "training", "multilabel")
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures", "training"))
from gen_multilabel import FINDINGS, small_resnet, tensor  # noqa: E402  (the generator's model and preprocessing)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "interop", "pth", "multilabel")
    if not os.path.exists(os.path.join(d, "wconv_val.json")):
        print(f"SKIP check_multilabel: no wconv_val.json in {d} (written by WCONV_INTEROP_OUT=… swift test --filter MultiLabelTrainingTests)")
        return 77
    w = json.load(open(os.path.join(d, "wconv_val.json")))
    ref = json.load(open(os.path.join(FIX, "reference.json")))
    with open(os.path.join(FIX, "val.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    x = tensor([Image.open(os.path.join(FIX, r["path"])).convert("RGB") for r in rows])
    t = np.array([[float(r[k] or 0) for k in FINDINGS] for r in rows])
    L = len(FINDINGS)
    wlogits = np.array(w["logits"], dtype=np.float64).reshape(-1, L)[np.argsort(w["rows"])]
    failed = 0
    for name, sd in (("multilabel.pth", torch.load(os.path.join(d, "multilabel.pth"), weights_only=True)),
                     ("multilabel.safetensors", load_file(os.path.join(d, "multilabel.safetensors")))):
        m = small_resnet(L)
        missing, unexpected = m.load_state_dict(sd, strict=False)
        # torch's BatchNorm counter is the only tensor wconv need not carry.
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        m.eval()
        with torch.no_grad():
            logits = m(x).double().numpy()
        auc = float(np.mean([roc_auc_score(t[:, j], logits[:, j]) for j in range(L)]))
        diff = float(np.abs(logits - wlogits).max())
        problems = []
        if missing or unexpected:
            problems.append(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        if m.fc.out_features != L or tuple(sd["fc.weight"].shape) != (L, m.fc.in_features):
            problems.append(f"head is {tuple(sd['fc.weight'].shape)}, expected Linear(…, {L})")
        if diff > 1e-4:
            problems.append(f"torch's logits differ from wconv's by {diff:.3g}")
        if abs(auc - w["macro_auc"]) > 1e-6:
            problems.append(f"macro AUC in torch {auc:.6f} vs wconv {w['macro_auc']:.6f}")
        if abs(auc - ref["best_macro_auc"]) > 0.03:
            problems.append(f"macro AUC {auc:.4f} vs torch's own run of the recipe {ref['best_macro_auc']:.4f}")
        if problems:
            failed += 1
            print(f"FAIL {name}:")
            for p in problems:
                print("   ", p)
        else:
            print(f"ok   {name}: loads into torchvision ResNet with Linear({m.fc.in_features}, {L}); logits within {diff:.1e} of wconv's; "
                  f"macro AUC {auc:.4f} (wconv {w['macro_auc']:.4f}, torch's run of the recipe {ref['best_macro_auc']:.4f})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
