# PyTorch's side of the training benchmark: images/s (sequences/s for bert_base and minilm, BERT
# sequence classifiers of those shapes with random weights at --seq-len tokens) of the usual loops on the CPU.
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
ap.add_argument("--seq-len", type=int, default=128, help="tokens per sequence for the text models")
ap.add_argument("--autocast", action="store_true", help="bf16 autocast (torch.autocast('cpu', torch.bfloat16)) around the forward passes")
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
y = torch.arange(a.batch) % a.classes
TEXT = a.arch in ("bert_base", "minilm")


def bert_config(arch):
    """BERT-base (bert-base-uncased's shape) or MiniLM (all-MiniLM-L6-v2's), for the bench only."""
    from transformers import BertConfig
    if arch == "bert_base":
        return BertConfig(num_labels=a.classes)
    return BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                      num_labels=a.classes)


if TEXT:
    # Random unpadded ids (never [PAD] = 0), as wconv's bench feeds; mask all ones, token types 0.
    ids = torch.randint(1, bert_config(a.arch).vocab_size, (a.batch, a.seq_len))
    x = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
else:
    x = torch.randn(a.batch, 3, a.size, a.size)


class Text(torch.nn.Module):
    """BertForSequenceClassification taking the feed dict, returning logits; `head` is its classifier."""
    def __init__(self):
        super().__init__()
        from transformers import BertForSequenceClassification
        self.m = BertForSequenceClassification(bert_config(a.arch))
        self.head = self.m.classifier

    def forward(self, x):
        return self.m(**x).logits


def model():
    if TEXT:
        return Text()
    m = getattr(torchvision.models, a.arch)(weights=None)
    if hasattr(m, "fc"):
        m.fc = torch.nn.Linear(m.fc.in_features, a.classes)
    else:
        m.classifier[-1] = torch.nn.Linear(m.classifier[-1].in_features, a.classes)
    return m


def timed(step):
    if a.autocast:
        plain = step
        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                plain()
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
head = m.head if TEXT else m.fc if hasattr(m, "fc") else m.classifier[-1]
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
print(json.dumps({"arch": a.arch, "precision": "bf16 autocast" if a.autocast else "f32", "size": a.seq_len if TEXT else a.size, "batch": a.batch, "threads": a.threads, "images_per_second": res,
                  "peak_rss": peak}))
