#!/usr/bin/env bash
# Training throughput, wconv beside PyTorch in the same run (design.md §7).
# usage: tools/bench-train/run.sh [size] [batch] [threads]      (builds wconv in release first)
# wconv trains a built-in ResNet-18 (`--synthetic resnet18`, torchvision's layout and names, random
# weights); PyTorch trains torchvision's resnet18(weights=None). Feature extraction is reported both
# ways: PyTorch's usual loop pays the frozen forward every epoch, wconv's cache pays it once.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-224}; BATCH=${2:-16}; THREADS=${3:-2}
# WCONV_BIN=path runs another wconv binary (e.g. an older build for before/after figures).
if [ -z "${WCONV_BIN:-}" ]; then swift build -c release --product wconv >/dev/null; WCONV=.build/release/wconv; else WCONV="$WCONV_BIN"; fi
PY="${WCONV_PY:-$(tools/refenv)}"
# Models: ARCHS="resnet18 resnet50 efficientnet_b0 bert_base minilm" (default resnet18). resnet18 is wconv's built-in
# synthetic network; the others are torchvision models (weights=None, random BatchNorm statistics)
# saved as state dicts into .build/bench/ at bench time and imported by wconv like any user file;
# bert_base and minilm are BERT sequence classifiers (random weights) at SEQ tokens (default 128).
ARCHS=${ARCHS:-resnet18}
# PRECISION=bf16 trains wconv in mixed precision (`--precision bf16`); PyTorch stays f32 eager
# unless TORCH_AUTOCAST=1 (torch.autocast("cpu", torch.bfloat16) around its steps, for reference).
PREC=(--precision "${PRECISION:-f32}")
TORCH_PREC=(); [ "${TORCH_AUTOCAST:-0}" = 1 ] && TORCH_PREC=(--autocast)
# ISA=avx2 holds both sides to AVX2 + FMA, as on a CPU without AVX-512 (the same variables as
# tools/bench-run --isa avx2: oneDNN, OpenBLAS's core and wconv's vector kernels; ATen and MKL).
. tools/bench.d/isa.sh
bench_isa "${ISA:-native}"
"$WCONV" --version | sed 1d || true
mkdir -p .build/bench
# PyTorch runs before and after wconv and its two runs are averaged: this VM's speed moves by the
# minute, and a slow minute on one side alone would decide the ratio.
torch_run() { "$PY" tools/bench-train/train_torch.py --arch "$ARCH" --size "$SIZE" --seq-len "$SEQ" --batch "$BATCH" --threads "$THREADS" "${TORCH_PREC[@]}"; }
for ARCH in $ARCHS; do
SEQ=${SEQ:-128}
T0=$(torch_run)
if [ "$ARCH" = resnet18 ]; then
  W=$("$WCONV" bench train --synthetic resnet18 --size "$SIZE" --batch-size "$BATCH" --threads "$THREADS" "${PREC[@]}" --json)
elif [ "$ARCH" = bert_base ] || [ "$ARCH" = minilm ]; then
  # BERT sequence classifiers of bert-base-uncased's and all-MiniLM-L6-v2's shapes, random weights,
  # saved as Hugging Face folders (model.safetensors + config.json) at bench time.
  D=.build/bench/$ARCH
  [ -f "$D/model.safetensors" ] || "$PY" - "$ARCH" "$D" <<'GEN'
import sys, torch
from transformers import BertConfig, BertForSequenceClassification
torch.manual_seed(0)
cfg = BertConfig(num_labels=10) if sys.argv[1] == "bert_base" else BertConfig(
    hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536, num_labels=10)
BertForSequenceClassification(cfg).eval().save_pretrained(sys.argv[2])
GEN
  W=$("$WCONV" bench train "$D/model.safetensors" --seq-len "$SEQ" --batch-size "$BATCH" --threads "$THREADS" "${PREC[@]}" --json)
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
  W=$("$WCONV" bench train "$F" --batch-size "$BATCH" --threads "$THREADS" "${PREC[@]}" --json)
fi
T=$(torch_run)
"$PY" - "$W" "$T" "$ARCH" "$T0" <<'PY'
import json, sys
wj = json.loads(sys.argv[1]); w = wj["images_per_second"]; t = json.loads(sys.argv[2])
runs = [t] + [json.loads(a) for a in sys.argv[4:] if a]
# PyTorch's figures: the mean of its runs before and after wconv's; its peak the larger.
ti = {k: sum(r["images_per_second"][k] for r in runs) / len(runs) for k in t["images_per_second"]}
t["peak_rss"] = max(r.get("peak_rss", 0) for r in runs)
gf = wj.get("gflop_per_image", {}); roof = wj.get("gemm_roof_gflops")
unit = wj.get("unit", "images")
print(f"{sys.argv[3]} at {t['size']}{' tokens' if unit == 'sequences' else ''}, batch {t['batch']}, {t['threads']} threads ({unit}/s, higher is better; wconv {wj.get('precision', 'f32')}, torch {t.get('precision', 'f32')})")
rows = [("full fine-tune step", "finetune", ti["finetune"]),
        ("feature-extract step, uncached", "feature-extract (uncached)", ti["feature-extract (usual loop)"]),
        ("frozen forward (cache fill)", "frozen forward (once per image)", ti["frozen forward"])]
for name, key, b in rows:
    a = w[key]
    line = f"  {name:34s} wconv {a:8.1f}   torch {b:8.1f}   ratio {a / b:5.2f}"
    if key in gf and roof:
        line += f"   GFLOP/s wconv {a * gf[key]:6.1f} ({100 * a * gf[key] / roof:3.0f}% of roof)  torch {b * gf[key]:6.1f} ({100 * b * gf[key] / roof:3.0f}%)"
    print(line)
ep = 10
print(f"  10-epoch feature extraction, s per 1000 {unit}: wconv cached {1000 / w['frozen forward (once per image)']:.1f}"
      f"   torch usual loop {ep * 1000 / ti['feature-extract (usual loop)']:.1f}"
      f"   speed-up ×{(ep * 1000 / ti['feature-extract (usual loop)']) / (1000 / w['frozen forward (once per image)']):.1f}")
if roof:
    print(f"  GEMM roof (OpenBLAS sgemm 2048³, measured by wconv in this run) {roof:.1f} GFLOP/s; GFLOP = conv/linear/matmul multiply-adds ×2, forward + backward")
MiB = 1024 * 1024
print(f"  peak memory (VmHWM, whole process; PyTorch's rates are the mean of a run before and after wconv's): wconv {wj.get('peak_rss_bytes', 0) / MiB:.0f} MiB   torch {t.get('peak_rss', 0) / MiB:.0f} MiB")
PY
done
