#!/usr/bin/env python3
"""Python side of `tools/bench` (import part).

  gen DIR                  writes DIR/resnet50.pth and DIR/resnet50.safetensors: a torchvision ResNet-50
                           state dict (weights=None, random BatchNorm running statistics)
  measure MODE FILE N      loads FILE N times in this fresh process and prints one JSON line:
                           min/median seconds, peak RSS (VmHWM) and RSS before loading (after imports)
     MODE: torch | torch_mmap | safetensors
"""
import json
import os
import statistics
import sys
import time


def status():
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon"):
                vals[k] = int(v.split()[0]) * 1024
    return vals


def gen(d):
    import torch
    import torchvision
    from safetensors.torch import save_file
    os.makedirs(d, exist_ok=True)
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    sd = m.state_dict()
    torch.save(sd, os.path.join(d, "resnet50.pth"))
    save_file(sd, os.path.join(d, "resnet50.safetensors"))


def measure(mode, path, n):
    import torch
    if mode == "safetensors":
        from safetensors.torch import load_file
        load = lambda: load_file(path)
    elif mode == "torch":
        load = lambda: torch.load(path, weights_only=True)
    elif mode == "torch_mmap":
        load = lambda: torch.load(path, weights_only=True, mmap=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
    before = status()
    times = []
    sd = None
    for _ in range(n):
        sd = None
        t0 = time.perf_counter()
        sd = load()
        times.append(time.perf_counter() - t0)
    after = status()
    print(json.dumps({"mode": mode, "tensors": len(sd), "min": min(times), "median": statistics.median(times),
                      "peak_rss": after["VmHWM"], "baseline_rss": before["VmRSS"],
                      "anon_delta": after["RssAnon"] - before["RssAnon"]}))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif sys.argv[1] == "measure":
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))
