"""Checks on the GPU machine (torch + transformers + PEFT) that the HF stack loads what tuneforge writes and
computes what our engine computed: the folder comes from `tsx scripts/device/make-hf-check.ts <dir>`.

  python3 check_hf.py <dir>   -> prints one JSON object; exit code 1 if any check fails.

Checks: AutoTokenizer ids and chat template == ours; AutoModelForCausalLM on the tiny model, PeftModel on our
adapter (unmerged), and AutoModelForCausalLM on our merged folder each give our engine's logits (fp32, CPU).
"""

import json
import sys

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

LOGITS_TOL = 1e-4  # the fixtures' logits tolerance


def logits_error(model, ids, expected):
    worst = 0.0
    with torch.no_grad():
        for row, want in zip(ids, expected):
            got = model(torch.tensor([row])).logits[0].float().numpy().reshape(-1)
            worst = max(worst, float(np.abs(got - np.asarray(want, dtype=np.float32)).max()))
    return worst


def main(root):
    exp = json.load(open(f"{root}/expected.json"))
    report = {}
    tok = AutoTokenizer.from_pretrained(f"{root}/tiny")
    report["tokenizer_ids_equal"] = [tok.encode(t, add_special_tokens=False) for t in exp["texts"]] == exp["ids"]
    messages = [{"role": r, "content": c} for r, c in exp["chat"]["messages"]]
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    report["chat_template_equal"] = rendered == exp["chat"]["rendered"]

    base = AutoModelForCausalLM.from_pretrained(f"{root}/tiny", dtype=torch.float32).eval()
    report["base_logits_max_abs_err"] = logits_error(base, exp["ids"], exp["logits"]["base"])
    peft_model = PeftModel.from_pretrained(base, f"{root}/adapter").eval()
    report["peft_adapter_logits_max_abs_err"] = logits_error(peft_model, exp["ids"], exp["logits"]["adapter"])
    merged = AutoModelForCausalLM.from_pretrained(f"{root}/merged", dtype=torch.float32).eval()
    report["merged_logits_max_abs_err"] = logits_error(merged, exp["ids"], exp["logits"]["merged"])

    ok = (
        report["tokenizer_ids_equal"]
        and report["chat_template_equal"]
        and all(v <= LOGITS_TOL for k, v in report.items() if k.endswith("_err"))
    )
    report["ok"] = bool(ok)
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "hf-check"))
