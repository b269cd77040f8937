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
        print(f"SKIP bert_cls_finetuned/: no wconv_val.json in {d} (written by WCONV_INTEROP_OUT=… swift test --filter TextTrainingTests)")
        if not os.path.exists(os.path.join(d, "distilbert_logits.json")):
            return 77
        return 1 if check_distilbert(d) else 0
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
    failed = report("bert_cls_finetuned/", problems,
                    f"AutoModelForSequenceClassification + AutoTokenizer load it (no missing/unexpected keys); "
                    f"logits within {diff:.1e} of wconv's on {len(rows)} texts; accuracy {acc:.4f} (wconv {w['accuracy']:.4f})")
    failed_distilbert = check_distilbert(d)
    return 1 if failed or failed_distilbert else 0


def check_distilbert(d):
    """The DistilBERT head wconv adds loads as DistilBertForSequenceClassification with equal logits."""
    meta = os.path.join(d, "distilbert_logits.json")
    if not os.path.exists(meta):
        print(f"SKIP distilbert_cls/: no distilbert_logits.json in {d}")
        return False
    w = json.load(open(meta))
    model, info = AutoModelForSequenceClassification.from_pretrained(os.path.join(d, "distilbert_cls"), output_loading_info=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(w["input_ids"])).logits.double().numpy()
    diff = float(np.abs(logits.flatten() - np.array(w["logits"])).max())
    problems = []
    if any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")):
        problems.append(f"loading info {info}")
    if type(model).__name__ != "DistilBertForSequenceClassification":
        problems.append(f"loaded as {type(model).__name__}")
    if diff > 1e-4:
        problems.append(f"transformers' logits differ from wconv's by {diff:.3g}")
    return report("distilbert_cls/", problems, f"loads as DistilBertForSequenceClassification (no missing/unexpected keys); logits within {diff:.1e} of wconv's")


def report(name, problems, ok):
    if problems:
        print(f"FAIL {name}:")
        for p in problems:
            print("   ", p)
        return True
    print(f"ok   {name}: {ok}")
    return False


if __name__ == "__main__":
    sys.exit(main())
