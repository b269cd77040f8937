# Data of tools/bench-fewlabel: issue 9's few-label task, written at bench time (not committed).
# run with: $(tools/refenv) tools/bench.d/fewlabel_data.py OUT [VAL_IMAGES]
# The pretrained [1,1,1,1] ResNet (widths 8-16-32-64, 32×32) and the 50 training images are the
# committed fixture of tools/fixtures/training/gen_fewlabel.py; the validation set is drawn by the same
# generator (same shapes, colours and noise) with another seed, VAL_IMAGES of them (issue 9: 846),
# round-robin over the 5 classes.
import os, shutil, sys
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures", "training"))
import gen_fewlabel as g  # noqa: E402  (draw(), TARGET)

out = sys.argv[1]
n_val = int(sys.argv[2]) if len(sys.argv) > 2 else 846
fixture = os.path.join(ROOT, "fixtures", "training", "fewlabel")
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
shutil.copy(os.path.join(fixture, "pretrained.pth"), os.path.join(out, "pretrained.pth"))
shutil.copytree(os.path.join(fixture, "train"), os.path.join(out, "train"))
g.rng = np.random.default_rng(9)
for c in g.TARGET:
    os.makedirs(os.path.join(out, "val", c))
for i in range(n_val):
    c = g.TARGET[i % len(g.TARGET)]
    g.draw(c).save(os.path.join(out, "val", c, f"{i // len(g.TARGET):03d}.png"))
print(f"{out}: 50 training, {n_val} validation images", file=sys.stderr)
