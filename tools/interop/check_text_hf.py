#!/usr/bin/env python3
"""Interop check: the Hugging Face folder wconv's text fine-tuning writes loads into transformers.

Usage: $(tools/refenv) tools/interop/check_text_hf.py [DIR]
  DIR (default .build/interop/pth/text) holds bert_cls_finetuned/ (wconv's `-o DIR/` output) and
  wconv_val.json (wconv's validation logits), written by
  `WCONV_INTEROP_OUT=.build/interop/pth swift test --filter TextTrainingTests` (tools/test does).
  AutoModelForSequenceClassification.from_pretrained must load it with no missing, unexpected or
  mismatched keys, as BertForSequenceClassification with wconv's id2label; AutoTokenizer must load
  the copied tokenizer; transformers' logits on the validation texts (padded batches, wconv's
  max length) must equal wconv's within 1e-4, and so must the accuracy.
"""
import json
import os
import sys

try:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
except ImportError as e:
    print(f"SKIP check_text_hf: {e.name} is not installed in the reference env")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "interop", "pth", "text")
    meta = os.path.join(d, "wconv_val.json")
    if not os.path.exists(meta):
        print(f"SKIP check_text_hf: no wconv_val.json in {d} (written by WCONV_INTEROP_OUT=… swift test --filter TextTrainingTests)")
        return 77
    w = json.load(open(meta))
    folder = os.path.join(d, "bert_cls_finetuned")
    model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    tok = AutoTokenizer.from_pretrained(folder)
    model.eval()
    rows = [json.loads(line) for line in open(w["val"], encoding="utf-8") if line.strip()]
    classes = w["classes"]
    logits = []
    with torch.no_grad():
        for s in range(0, len(rows), 8):
            batch = tok([r["text"] for r in rows[s:s + 8]], padding=True, truncation=True, max_length=w["max_length"], return_tensors="pt")
            logits.append(model(**batch).logits.double().numpy())
    logits = np.concatenate(logits)
    wl = np.zeros_like(logits)
    wl[np.array(w["rows"])] = np.array(w["logits"]).reshape(-1, len(classes))
    acc = float(np.mean(logits.argmax(1) == np.array([classes.index(r["label"]) for r in rows])))
    diff = float(np.abs(logits - wl).max())
    problems = []
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        problems.append(f"loading info {info}")
    if type(model).__name__ != "BertForSequenceClassification":
        problems.append(f"loaded as {type(model).__name__}")
    if [model.config.id2label[i] for i in range(len(classes))] != classes:
        problems.append(f"id2label {model.config.id2label} vs {classes}")
    if diff > 1e-4:
        problems.append(f"transformers' logits differ from wconv's by {diff:.3g}")
    if abs(acc - w["accuracy"]) > 1e-9:
        problems.append(f"accuracy {acc:.4f} in transformers vs {w['accuracy']:.4f} in wconv")
    if problems:
        print("FAIL bert_cls_finetuned/:")
        for p in problems:
            print("   ", p)
        return 1
    print(f"ok   bert_cls_finetuned/: AutoModelForSequenceClassification + AutoTokenizer load it (no missing/unexpected keys); "
          f"logits within {diff:.1e} of wconv's on {len(rows)} texts; accuracy {acc:.4f} (wconv {w['accuracy']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
