#!/usr/bin/env python3
"""Prints the import benchmark table from the JSON lines tools/bench collected (stdin)."""
import json
import sys

rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {r["label"]: r for r in rows}
MiB = 1024 * 1024


def fmt_ms(s):
    return f"{s * 1000:9.2f}"


print(f"{'what':44} {'min ms':>9} {'median ms':>9} {'peak RSS':>10} {'before':>9} {'load cost':>10} {'anon +':>9}")
print("-" * 106)
for r in rows:
    if "error" in r:
        print(f"{r['label']:44} n/a: {r['error'][:100]}")
        continue
    cost = r["peak_rss"] - r["baseline_rss"]
    print(f"{r['label']:44} {fmt_ms(r['min'])} {fmt_ms(r['median'])} {r['peak_rss'] / MiB:8.1f}Mi {r['baseline_rss'] / MiB:7.1f}Mi {cost / MiB:8.1f}Mi {r['anon_delta'] / MiB:7.1f}Mi")
print("load cost = peak RSS - RSS just before loading (after imports; file pages count once touched);")
print("anon + = growth of anonymous memory (RssAnon) over the first load: what loading costs beyond the file mapping.")
print()
pairs = [
    ("wconv .safetensors", "safetensors.torch.load_file"),
    ("wconv .pth", "torch.load(weights_only, mmap)"),
    ("wconv .pth", "torch.load(weights_only)"),
    ("wconv .safetensors --touch", "safetensors.torch.load_file"),
    ("wconv .pth --touch", "torch.load(weights_only)"),
]
print(f"{'ratio wconv / reference':70} {'time':>7} {'load cost':>10}")
for a, b in pairs:
    ra, rb = by.get(a), by.get(b)
    if not ra or not rb or "error" in ra or "error" in rb:
        print(f"{a + '  vs  ' + b:70} {'n/a':>7}")
        continue
    t = ra["min"] / rb["min"]
    ca, cb = ra["peak_rss"] - ra["baseline_rss"], rb["peak_rss"] - rb["baseline_rss"]
    c = f"{ca / cb:10.3f}" if cb > 0 else f"{'-':>10}"
    print(f"{a + '  vs  ' + b:70} {t:7.3f} {c}")
