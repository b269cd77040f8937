# Driver of tools/bench-fewlabel: runs `wconv finetune` and the PyTorch script (fewlabel_torch.py) as
# processes, alternating, RUNS times each; prints the medians, the ratio (PyTorch / wconv: > 1 means
# wconv is faster) and both final accuracies, and wconv's phases from the time each log line arrives.
# usage: fewlabel_run.py WCONV PY DIR THREADS RUNS
import json, os, re, resource, statistics, subprocess, sys, time

wconv, py, root, threads, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
here = os.path.dirname(os.path.abspath(__file__))
EPOCH = re.compile(r"^epoch \d+/\d+ .* (\d+) img/s\s+([\d.]+)s")


def peak_rss(pid_status):
    return next((int(l.split()[1]) * 1024 for l in pid_status.splitlines() if l.startswith("VmHWM:")), 0)


def run_wconv():
    cmd = [wconv, "finetune", f"{root}/pretrained.pth", "--data", f"{root}/train", "--val", f"{root}/val", "--mode", "finetune",
           "--threads", str(threads), "--json", "-o", f"{root}/out.safetensors"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:  # each line stamped when it arrives: the phases of the job
        lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"wconv finetune failed ({status}):\n" + "\n".join(l for _, l in lines))
    j = json.loads(out)
    train = val = 0.0
    first_epoch = baseline_end = None
    n_train = 50
    for t, l in lines:
        m = EPOCH.match(l)
        if m:
            ips, sec = float(m.group(1)), float(m.group(2))
            tr = n_train / max(ips, 1e-9)
            train += tr
            val += max(sec - tr, 0)
            if first_epoch is None:
                first_epoch = t - sec
        if l.startswith("feature-extraction baseline"):
            baseline_end = t
    last_epoch = max((t for t, l in lines if EPOCH.match(l)), default=wall)
    # The plan's lines arrive just before the baseline runs; its result line arrives when it is done.
    before_baseline = max((t for t, l in lines if baseline_end is not None and t < baseline_end), default=0.0)
    startup = before_baseline if baseline_end is not None else (first_epoch or 0.0)
    phases = {"start-up (load, decode, plan)": startup,
              "guard-rail baseline": (baseline_end - before_baseline) if baseline_end is not None else 0.0,
              "training": train, "validation": val,
              "after the epochs (final eval, write, exit)": wall - last_epoch}
    return {"wall": wall, "accuracy": j["metrics"]["accuracy"], "phases": phases, "peak_rss": usage.ru_maxrss * 1024,
            "cpu": usage.ru_utime + usage.ru_stime}


def run_torch():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([py, os.path.join(here, "fewlabel_torch.py"), root, str(threads)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit("PyTorch script failed:\n" + p.stderr)
    j = json.loads(p.stdout.strip().splitlines()[-1])
    j["wall"] = wall
    j["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return j


W, P = [], []
for i in range(runs):
    # Alternate the order so a change in the machine's load hits both sides alike.
    if i % 2 == 0:
        W.append(run_wconv()); P.append(run_torch())
    else:
        P.append(run_torch()); W.append(run_wconv())
    print(f"run {i + 1}: wconv {W[-1]['wall']:.1f} s (acc {W[-1]['accuracy']:.3f})   PyTorch {P[-1]['wall']:.1f} s process, "
          f"{P[-1]['script_seconds']:.1f} s in-script (acc {P[-1]['accuracy']:.3f})", flush=True)

med = statistics.median
w, pw, ps = med(x["wall"] for x in W), med(x["wall"] for x in P), med(x["script_seconds"] for x in P)
print(f"\nfew-label job, median of {runs} ({threads} threads): 50 training images, "
      f"{sum(len(f) for _, _, f in os.walk(root + '/val'))} validation, 15 epochs, batch 10")
print(f"  wconv finetune (process)          {w:7.1f} s   final val accuracy {med(x['accuracy'] for x in W):.3f}")
print(f"  PyTorch script (process)          {pw:7.1f} s   final val accuracy {med(x['accuracy'] for x in P):.3f}   ratio {pw / w:5.2f}")
print(f"  PyTorch script (after imports)    {ps:7.1f} s                                  ratio {ps / w:5.2f}")
print("  wconv phases (median s): " + ", ".join(f"{k} {med(x['phases'][k] for x in W):.1f}" for k in W[0]["phases"]))
print(f"  PyTorch phases (median s): imports {med(x['import_seconds'] for x in P):.1f}, load+decode {med(x['load_seconds'] for x in P):.1f}, "
      f"training {med(x['train_seconds'] for x in P):.1f}, validation {med(x['val_seconds'] for x in P):.1f}")
MiB = 1024 * 1024
print(f"  peak memory (VmHWM / maxrss): wconv {med(x['peak_rss'] for x in W) / MiB:.0f} MiB   PyTorch {med(x['peak_rss'] for x in P) / MiB:.0f} MiB"
      f";  CPU time (user + sys): wconv {med(x['cpu'] for x in W):.1f} s   PyTorch {med(x['cpu'] for x in P):.1f} s")
print("  ratio = PyTorch seconds / wconv seconds (> 1: wconv faster); goal (issue 9) ≥ 2 for the process")
