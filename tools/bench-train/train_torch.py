# PyTorch's side of the training benchmark: images/s of the usual loops on the CPU.
# run with: $(tools/refenv) tools/bench-train/train_torch.py --arch resnet18 --size 224 --batch 16 --threads 2
# Prints one JSON line (with the process's peak RSS, VmHWM): full fine-tune step (forward + backward + AdamW), the usual feature-extract
# step (frozen backbone, model.train(), full forward every step, backward into the head only), and
# the eval-mode frozen forward (what a feature cache pays once per image).
import argparse, json, time
import torch
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="resnet18")
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--classes", type=int, default=10)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
x = torch.randn(a.batch, 3, a.size, a.size)
y = torch.arange(a.batch) % a.classes


def model():
    m = getattr(torchvision.models, a.arch)(weights=None)
    if hasattr(m, "fc"):
        m.fc = torch.nn.Linear(m.fc.in_features, a.classes)
    else:
        m.classifier[-1] = torch.nn.Linear(m.classifier[-1].in_features, a.classes)
    return m


def timed(step):
    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    return a.batch * a.steps / (time.perf_counter() - t0)


res = {}
m = model().train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
def ft():
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
res["finetune"] = timed(ft)

m = model().train()
head = m.fc if hasattr(m, "fc") else m.classifier[-1]
for p in m.parameters():
    p.requires_grad_(False)
for p in head.parameters():
    p.requires_grad_(True)
opt2 = torch.optim.AdamW(head.parameters(), lr=1e-3)
def fe():
    opt2.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt2.step()
res["feature-extract (usual loop)"] = timed(fe)

m.eval()
def fwd():
    with torch.no_grad():
        m(x)
res["frozen forward"] = timed(fwd)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"arch": a.arch, "size": a.size, "batch": a.batch, "threads": a.threads, "images_per_second": res,
                  "peak_rss": peak}))
