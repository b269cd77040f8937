#!/usr/bin/env python3
"""PyTorch's side of tools/bench-run; one configuration per process so peak memory is its own.

  run_torch.py MODE MODEL BATCH SIZE ITERS THREADS    prints one JSON line
     MODE eager: the model as torchvision builds it (NCHW, eager), under no_grad
     MODE best:  channels_last + frozen TorchScript (torch.jit.trace + torch.jit.freeze), the
                 fastest f32 CPU configuration PyTorch offers without extra packages
  run_torch.py roof THREADS                           f32 matmul 2048³ GFLOP/s (best of 3)
Output fields: images_per_second (median of ITERS), peak_rss (VmHWM, bytes), baseline_rss (after imports).
"""
import json
import sys
import time


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    import torch
    mode = sys.argv[1]
    if mode == "roof":
        torch.set_num_threads(int(sys.argv[2]))
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        torch.mm(a, b)
        best = min(timed(lambda: torch.mm(a, b)) for _ in range(3))
        print(json.dumps({"gflops": 2 * 2048 ** 3 / best / 1e9}))
        return
    import torchvision
    name, batch, size, iters, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(threads)
    baseline = vm("VmRSS")
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        if mode == "best":
            m = m.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
            m = torch.jit.freeze(torch.jit.trace(m, x))
            m(x)  # the profiling executor optimises on the first runs
        elif mode != "eager":
            raise SystemExit(f"unknown mode {mode}")
        m(x)
        times = sorted(timed(lambda: m(x)) for _ in range(iters))
    print(json.dumps({"mode": mode, "model": name, "images_per_second": batch / times[len(times) // 2],
                      "peak_rss": vm("VmHWM"), "baseline_rss": baseline}))


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
