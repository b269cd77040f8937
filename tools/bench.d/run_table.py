#!/usr/bin/env python3
"""Prints tools/bench-run's table from its JSON lines (stdin); argv[1] is torch's matmul roof."""
import json
import sys

torch_roof = float(sys.argv[1])
rows = [json.loads(l) for l in sys.stdin if l.strip()]
MiB = 1024 * 1024
models = []
for r in rows:
    name = r.get("model_name") or r.get("model")
    if name not in models:
        models.append(name)


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def median(xs):
    xs = sorted(xs)
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


rounds = sorted({r.get("round", 1) for r in rows})
wroof = None
spreads = []
print(f"{'model':16} {'wconv':>7} {'eager':>7} {'best':>7} {'÷eager':>7} {'÷best':>6}   "
      f"{'GFLOP/s wconv · eager · best (% of roof)':44} {'peak MiB wconv · eager · best':>30}")
for name in models:
    per = []  # (wconv, eager, best) images/s of each round; PyTorch's the mean of its runs around wconv's
    for k in rounds:
        w = next(r for r in rows if r["mode"] == "wconv" and r["model_name"] == name and r.get("round", 1) == k)
        ei = mean([r["images_per_second"] for r in rows if r["mode"] == "eager" and r["model"] == name and r.get("round", 1) == k])
        bi = mean([r["images_per_second"] for r in rows if r["mode"] == "best" and r["model"] == name and r.get("round", 1) == k])
        per.append((w["imagesPerSecond"], ei, bi))
    w = next(r for r in rows if r["mode"] == "wconv" and r["model_name"] == name)
    eager = [r for r in rows if r["mode"] == "eager" and r["model"] == name]
    best = [r for r in rows if r["mode"] == "best" and r["model"] == name]
    wi, ei, bi = (median([p[i] for p in per]) for i in range(3))
    to_eager, to_best = [p[0] / p[1] for p in per], [p[0] / p[2] for p in per]
    if len(per) > 1:
        spreads.append(f"{name}: ÷best by round {' '.join(f'{x:.2f}' for x in to_best)} (median {median(to_best):.2f}, "
                       f"{sum(x >= 1.2 for x in to_best)} of {len(per)} at ≥ 1.2); ÷eager {' '.join(f'{x:.2f}' for x in to_eager)}")
    per_image = w.get("gflopPerBatch", float("nan")) / w["batch"]
    roof = w.get("gemmRoofGflops")
    wroof = roof or wroof
    gf = lambda ips: ips * per_image
    ref = max(roof or 0, torch_roof)
    frac = lambda ips: f"{gf(ips):5.1f} ({100 * gf(ips) / ref:3.0f}%)"
    peak = lambda rs: max(r["peak_rss"] for r in rs) / MiB
    base = lambda rs: min(r["baseline_rss"] for r in rs) / MiB
    wpeak = max(r.get("peakRSSBytes", 0) for r in rows if r["mode"] == "wconv" and r["model_name"] == name) / MiB
    print(f"{name:16} {wi:7.2f} {ei:7.2f} {bi:7.2f} {median(to_eager):7.2f} {median(to_best):6.2f}   "
          f"{frac(wi) + ' · ' + frac(ei) + ' · ' + frac(bi):44} "
          f"{f'{wpeak:.0f} · {peak(eager):.0f} [{base(eager):.0f}] · {peak(best):.0f} [{base(best):.0f}]':>30}")
print(f"images/s, batch 16 at 224, 2 threads; PyTorch columns are the mean of a run before and after wconv's.")
if len(rounds) > 1:
    print(f"{len(rounds)} rounds: images/s are medians over the rounds, ratios the median of each round's ratio.")
    for line in spreads:
        print("  " + line)
print(f"GEMM roof: wconv's OpenBLAS sgemm 2048³ {wroof or float('nan'):.1f} GFLOP/s, torch.mm 2048³ {torch_roof:.1f}; "
      f"fractions are of the higher. GFLOP counts conv/linear/matmul multiply-adds ×2 (wconv's count for all three).")
print("peak = VmHWM of each process; [PyTorch's RSS after importing torch, before building the model].")
