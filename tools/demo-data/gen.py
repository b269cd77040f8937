"""Builds the demo's data and pretrained model (committed under demo/).

Run:  $(tools/refenv)/python tools/demo-data/gen.py

Source task (pretraining, not shipped): 8 classes of synthetic shapes on textured backgrounds.
A narrow torchvision-style ResNet (torchvision's BasicBlock, names conv1/bn1/layer1..4/fc) is trained
on it with torch and saved as demo/pretrained-shapes8.pth (a plain state dict).

Target task (shipped as PNG folders): 4 NEW shape classes — related to the source task (same kind of
strokes and textures) but never seen in pretraining — with few labelled images:
  demo/target/train/<class>/*.png   labelled, clean domain
  demo/target/val/<class>/*.png     labelled, shifted domain (the images a user wants to classify)
  demo/target/unlabeled/*.png       unlabelled, shifted domain (for MMD domain adaptation)
The shift: darker, lower-contrast, tinted images with heavier noise.
"""
import os, json, shutil, math
import numpy as np
import torch, torch.nn as nn
from PIL import Image
from torchvision.models.resnet import BasicBlock

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "demo")
S = 64
rng = np.random.default_rng(1234)
torch.manual_seed(1234)

def canvas(shift):
    base = rng.uniform(0.2, 0.8, size=3)
    img = np.ones((S, S, 3)) * base
    # background texture: a soft gradient plus noise
    yy, xx = np.mgrid[0:S, 0:S] / S
    g = rng.uniform(-0.2, 0.2) * xx + rng.uniform(-0.2, 0.2) * yy
    img += g[..., None]
    img += rng.normal(0, 0.06 if not shift else 0.12, size=img.shape)
    return img

def paint(img, mask, shift):
    col = rng.uniform(0, 1, size=3)
    # keep the shape visible against the background
    bg = img[mask].mean(axis=0) if mask.any() else img.mean(axis=(0, 1))
    if np.abs(col - bg).sum() < 0.6:
        col = 1 - bg
    img[mask] = col
    return img

def shape_mask(kind):
    yy, xx = np.mgrid[0:S, 0:S].astype(float)
    cx, cy = rng.uniform(22, 42, size=2)
    r = rng.uniform(12, 20)
    dx, dy = xx - cx, yy - cy
    d = np.sqrt(dx ** 2 + dy ** 2)
    t = rng.uniform(3, 6)
    if kind == "circle": return d < r
    if kind == "square": return (abs(dx) < r * 0.8) & (abs(dy) < r * 0.8)
    if kind == "triangle": return (dy < r * 0.7) & (dy > -r * 0.9 + 1.8 * abs(dx))
    if kind == "cross": return ((abs(dx) < t) & (abs(dy) < r)) | ((abs(dy) < t) & (abs(dx) < r))
    if kind == "ring": return (d < r) & (d > r - t - 2)
    if kind == "hstripes": return (np.floor(yy / 6) % 2 == 0) & (d < r + 6)
    if kind == "vstripes": return (np.floor(xx / 6) % 2 == 0) & (d < r + 6)
    if kind == "checker": return ((np.floor(xx / 8) + np.floor(yy / 8)) % 2 == 0) & (d < r + 6)
    # target classes: new shapes made of the same strokes
    if kind == "diamond": return (abs(dx) + abs(dy)) < r
    if kind == "xmark": return ((abs(dx - dy) < t) | (abs(dx + dy) < t)) & (d < r)
    if kind == "frame": return ((abs(dx) < r * 0.85) & (abs(dy) < r * 0.85)) & ~((abs(dx) < r * 0.85 - t - 2) & (abs(dy) < r * 0.85 - t - 2))
    if kind == "dots":
        m = np.zeros((S, S), bool)
        for ox, oy in [(-1, -1), (1, -1), (-1, 1), (1, 1)]:
            m |= np.sqrt((dx - ox * r * 0.55) ** 2 + (dy - oy * r * 0.55) ** 2) < 5
        return m
    raise ValueError(kind)

def make(kind, shift=False):
    img = canvas(shift)
    img = paint(img, shape_mask(kind), shift)
    if shift:
        img = img * 0.55 + np.array([0.05, 0.12, 0.0])   # darker, tinted, lower contrast
        img += rng.normal(0, 0.05, size=img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)

SOURCE = ["circle", "square", "triangle", "cross", "ring", "hstripes", "vstripes", "checker"]
TARGET = ["diamond", "dots", "frame", "xmark"]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

class NarrowResNet(nn.Module):
    """torchvision ResNet-10 layout, stem and names (conv1, bn1, layer1..4, fc) with small widths."""
    def __init__(self, widths=(16, 32, 64, 128), num_classes=8):
        super().__init__()
        self.inplanes = widths[0]
        # torchvision's stem exactly: 7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max pool.
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(widths[0], 1)
        self.layer2 = self._make(widths[1], 2)
        self.layer3 = self._make(widths[2], 2)
        self.layer4 = self._make(widths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)
    def _make(self, planes, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        block = BasicBlock(self.inplanes, planes, stride, down)
        self.inplanes = planes
        return nn.Sequential(block)
    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

def to_tensor(imgs):
    x = torch.tensor(np.stack(imgs), dtype=torch.float32).permute(0, 3, 1, 2) / 255
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]

def pretrain():
    torch.set_num_threads(2)
    n = 250
    imgs, labels = [], []
    for c, k in enumerate(SOURCE):
        for _ in range(n):
            imgs.append(make(k)); labels.append(c)
    x, y = to_tensor(imgs), torch.tensor(labels)
    model = NarrowResNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for epoch in range(8):
        perm = torch.randperm(len(y))
        model.train(); tot = 0
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(); loss.backward(); opt.step(); tot += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            tx = to_tensor([make(k) for k in SOURCE for _ in range(20)])
            ty = torch.tensor([c for c in range(len(SOURCE)) for _ in range(20)])
            acc = (model(tx).argmax(1) == ty).float().mean().item()
        print(f"pretrain epoch {epoch}: loss {tot / len(y):.3f} source val acc {acc:.3f}")
    return model, acc

def save_pngs():
    tgt = os.path.join(OUT, "target")
    shutil.rmtree(tgt, ignore_errors=True)
    counts = {"train": 16, "val": 16}
    for split, n in counts.items():
        for k in TARGET:
            d = os.path.join(tgt, split, k); os.makedirs(d)
            for i in range(n):
                Image.fromarray(make(k, shift=(split == "val"))).save(os.path.join(d, f"{k}_{i:03d}.png"), optimize=True)
    d = os.path.join(tgt, "unlabeled"); os.makedirs(d)
    i = 0
    for k in TARGET:
        for _ in range(16):
            Image.fromarray(make(k, shift=True)).save(os.path.join(d, f"u_{i:03d}.png"), optimize=True); i += 1

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    model, acc = pretrain()
    torch.save(model.state_dict(), os.path.join(OUT, "pretrained-shapes8.pth"))
    save_pngs()
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("# Demo data\n\nWritten by `tools/demo-data/gen.py` (see its docstring).\n\n"
                f"- `pretrained-shapes8.pth`: narrow ResNet (torchvision BasicBlock names) trained by torch on 8 source shape classes "
                f"({', '.join(SOURCE)}); source validation accuracy {acc:.3f}.\n"
                f"- `target/train`: {len(TARGET)} new classes ({', '.join(TARGET)}), 16 labelled clean images each.\n"
                "- `target/val`: the same classes in a shifted domain (darker, tinted, noisier), 16 each.\n"
                "- `target/unlabeled`: 64 unlabelled shifted-domain images for MMD domain adaptation.\n")
    print("wrote", OUT)
