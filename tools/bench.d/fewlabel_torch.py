# PyTorch's side of tools/bench-fewlabel: the script a PyTorch user writes for the recipe
# `wconv finetune pretrained.pth --data train --val val --mode finetune` runs with its defaults on
# 50 training images (DataFit's small-data defaults; `wconv plan` prints them):
#   32×32 input, ImageNet mean/std; new head Dropout(0.2) + Linear(64, classes); AdamW, weight decay
#   0.01 on weights only (not norms and biases), head lr 3e-3, backbone 3e-4, cosine per step;
#   15 epochs of batch 10, shuffled; RandomCrop(32, padding 4, reflect) + RandomHorizontalFlip;
#   BatchNorm in train mode; validation after every epoch (eval mode, batches of 64).
# Images are decoded once before training (as wconv does). Prints one JSON line: seconds inside the
# script (after imports), per phase, and the final validation accuracy.
# run with: $(tools/refenv) tools/bench.d/fewlabel_torch.py DIR THREADS
import time
T_START = time.perf_counter()
import json, math, os, sys  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision.transforms.v2 as T  # noqa: E402
from PIL import Image  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "training"))
from gen_fewlabel import small_resnet  # noqa: E402  (the fixture's network: torchvision names, widths 8-16-32-64)

T_IMPORTED = time.perf_counter()
root, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
MEAN, STD = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
EPOCHS, BS, VAL_BS, HEAD_LR, WD = 15, 10, 64, 3e-3, 0.01


def folder(path):
    classes = sorted(os.listdir(path))
    imgs, labels = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(path, c))):
            imgs.append(T.functional.pil_to_tensor(Image.open(os.path.join(path, c, f)).convert("RGB")))
            labels.append(ci)
    return classes, imgs, torch.tensor(labels)


classes, train_raw, ytr = folder(os.path.join(root, "train"))
_, val_raw, yva = folder(os.path.join(root, "val"))
xva = (torch.stack(val_raw).float() / 255 - MEAN) / STD
state = torch.load(os.path.join(root, "pretrained.pth"), map_location="cpu")
m = small_resnet(state["fc.weight"].shape[0])
m.load_state_dict(state)
m.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, len(classes)))
T_READY = time.perf_counter()

body_decay, body_plain, head_decay, head_plain = [], [], [], []
for n, p in m.named_parameters():
    head = n.startswith("fc.")
    plain = p.ndim <= 1  # norms and biases
    (head_plain if head and plain else head_decay if head else body_plain if plain else body_decay).append(p)
opt = torch.optim.AdamW([{"params": body_decay, "lr": HEAD_LR / 10, "weight_decay": WD},
                         {"params": body_plain, "lr": HEAD_LR / 10, "weight_decay": 0},
                         {"params": head_decay, "lr": HEAD_LR, "weight_decay": WD},
                         {"params": head_plain, "lr": HEAD_LR, "weight_decay": 0}])
n = len(train_raw)
steps = math.ceil(n / BS)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS * steps)
aug = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip()])
train_s = val_s = 0.0
acc = 0.0
for epoch in range(EPOCHS):
    t0 = time.perf_counter()
    m.train()
    perm = torch.randperm(n)
    for s in range(0, n, BS):
        idx = perm[s:s + BS].tolist()
        x = (torch.stack([aug(train_raw[j]) for j in idx]).float() / 255 - MEAN) / STD
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), ytr[idx]).backward()
        opt.step()
        sched.step()
    t1 = time.perf_counter()
    m.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(xva), VAL_BS):
            correct += int((m(xva[s:s + VAL_BS]).argmax(1) == yva[s:s + VAL_BS]).sum())
    acc = correct / len(xva)
    t2 = time.perf_counter()
    train_s += t1 - t0
    val_s += t2 - t1
T_END = time.perf_counter()
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"script_seconds": T_END - T_IMPORTED, "import_seconds": T_IMPORTED - T_START, "load_seconds": T_READY - T_IMPORTED,
                  "train_seconds": train_s, "val_seconds": val_s, "accuracy": acc, "threads": threads, "peak_rss": peak}))
