"""Checks that the HF stack (torch + transformers, and PEFT where installed) loads what tuneforge writes and
computes what our engine computed: the folder comes from `tsx scripts/device/make-hf-check.ts <dir>`.

  python3 check_hf.py <dir> [--without-peft]   -> prints one JSON object; exit code 1 if any check fails.

Checks: AutoTokenizer ids and chat template == ours (the tiny model); then for the tiny model and every parity
fixture model (models/<set>-<arch>/: qwen2, qwen3, llama; base and odd shapes; fixed token ids, as they have no
tokenizer), AutoModelForCausalLM on the base folder and on our merged folder each give our engine's logits (fp32,
CPU), and so does the base model with our adapter (rsLoRA on the odd set) applied twice:
  - PeftModel.from_pretrained on our adapter folder (needs peft; `--without-peft` skips it, and says so);
  - our adapter applied by forward hooks exactly as PEFT defines LoRA (no peft needed): every
    `base_model.model.<module>.lora_{A,B}.weight` must name an nn.Linear of the HF model, whose output gains
    scale * (x @ A^T) @ B^T, scale = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora). It proves our key
    names are HF's module paths and our scaling is PEFT's, independently of PEFT's own loader.
"""

import argparse
import importlib.util
import json
import math
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

LOGITS_TOL = 1e-4  # the fixtures' logits tolerance
KEY_PREFIX = "base_model.model."  # PEFT's saved-key prefix for a *ForCausalLM base model
PEFT_SKIPPED = "not installed: PeftModel check not run"


class CheckError(Exception):
    """The adapter folder does not match what PEFT would load: a failure, not a skipped check."""


def logits_error(model, ids, expected):
    worst = 0.0
    with torch.no_grad():
        for row, want in zip(ids, expected):
            got = model(torch.tensor([row], dtype=torch.long)).logits[0].float().numpy().reshape(-1)
            want = np.asarray(want, dtype=np.float32).reshape(-1)
            if got.shape != want.shape:
                raise CheckError(f"logits have {got.size} values, our engine's {want.size}")
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


def lora_scale(cfg):
    # PEFT's LoraLayer.update_layer: scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.
    r, alpha = cfg["r"], cfg["lora_alpha"]
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def check_plain_lora_config(cfg):
    # Features that change PEFT's forward beyond plain LoRA; the hook check models none of them, so refuse
    # rather than compare against the wrong formula.
    unsupported = {
        "peft_type": cfg.get("peft_type") != "LORA",
        "use_dora": bool(cfg.get("use_dora")),
        "bias": cfg.get("bias", "none") != "none",
        "fan_in_fan_out": bool(cfg.get("fan_in_fan_out")),
        "modules_to_save": bool(cfg.get("modules_to_save")),
        "rank_pattern": bool(cfg.get("rank_pattern")),
        "alpha_pattern": bool(cfg.get("alpha_pattern")),
        "layers_to_transform": cfg.get("layers_to_transform") is not None,
    }
    bad = [k for k, v in unsupported.items() if v]
    if bad:
        raise CheckError(f"adapter_config.json: {bad} not plain LoRA; the hook check does not model them")


def lora_pairs(tensors):
    """{module path: (A, B)} from PEFT's saved keys; every key must be a lora_A/lora_B weight of a pair."""
    pairs = {}
    for key, t in tensors.items():
        if not key.startswith(KEY_PREFIX):
            raise CheckError(f"adapter key {key!r} does not start with {KEY_PREFIX!r}")
        rest = key[len(KEY_PREFIX) :]
        for side in ("A", "B"):
            suffix = f".lora_{side}.weight"
            if rest.endswith(suffix):
                pairs.setdefault(rest[: -len(suffix)], {})[side] = t
                break
        else:
            raise CheckError(f"adapter key {key!r} is neither lora_A.weight nor lora_B.weight")
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise CheckError(f"adapter module {module!r} has lora_{''.join(ab)} but not both A and B")
    return {m: (ab["A"], ab["B"]) for m, ab in pairs.items()}


def peft_targets(model, target_modules):
    # PEFT matches a list of names against the last component of each module path (a str is a regex).
    if isinstance(target_modules, str):
        raise CheckError("adapter_config.json: regex target_modules; the hook check expects a list")
    wanted = set(target_modules)
    return {n for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in wanted}


def attach_lora_hooks(model, adapter_dir):
    """Applies our adapter to `model` by forward hooks as PEFT defines LoRA; returns (handles, facts)."""
    cfg = json.load(open(f"{adapter_dir}/adapter_config.json"))
    check_plain_lora_config(cfg)
    scale = lora_scale(cfg)
    pairs = lora_pairs(load_file(f"{adapter_dir}/adapter_model.safetensors"))
    modules = dict(model.named_modules())
    for name, (A, B) in pairs.items():
        mod = modules.get(name)
        if mod is None:
            raise CheckError(f"adapter module {name!r} is not a module of {type(model).__name__}")
        if not isinstance(mod, torch.nn.Linear):
            raise CheckError(f"adapter module {name!r} is {type(mod).__name__}, not nn.Linear")
        r = cfg["r"]
        if tuple(A.shape) != (r, mod.in_features) or tuple(B.shape) != (mod.out_features, r):
            raise CheckError(
                f"{name}: lora_A {tuple(A.shape)} / lora_B {tuple(B.shape)} do not fit r={r} and "
                f"nn.Linear({mod.in_features}, {mod.out_features})"
            )
    # Every module PEFT would wrap should carry weights; PEFT would silently zero-init the ones we left out.
    expected = peft_targets(model, cfg["target_modules"])
    if expected != set(pairs):
        missing, extra = sorted(expected - set(pairs)), sorted(set(pairs) - expected)
        raise CheckError(f"adapter modules differ from target_modules: missing {missing[:4]}, extra {extra[:4]}")

    def hook_for(A, B):
        A, B = A.float(), B.float()
        return lambda _mod, inputs, output: output + scale * ((inputs[0] @ A.T) @ B.T)

    handles = [modules[n].register_forward_hook(hook_for(A, B)) for n, (A, B) in pairs.items()]
    return handles, {"modules": len(pairs), "r": cfg["r"], "scale": scale}


def load_causal_lm(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def check_model(out, folders, ids, expected, use_peft):
    """The three logits checks for one model, into `out` (so a later failure keeps the earlier numbers): base
    folder, base + our adapter (hooks, and PEFT if use_peft), our merged folder; `folders` has the base/adapter/
    merged paths, `expected` our engine's logits for each."""
    base = load_causal_lm(folders["base"])
    out["base_logits_max_abs_err"] = logits_error(base, ids, expected["base"])
    try:
        handles, facts = attach_lora_hooks(base, folders["adapter"])
    except CheckError as e:
        out["lora_hooks_error"] = str(e)
    else:
        out["lora_hooks"] = facts
        out["lora_hooks_adapter_logits_max_abs_err"] = logits_error(base, ids, expected["adapter"])
        for h in handles:
            h.remove()
    if use_peft:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base, folders["adapter"]).eval()
        out["peft_adapter_logits_max_abs_err"] = logits_error(peft_model, ids, expected["adapter"])
    merged = load_causal_lm(folders["merged"])
    out["merged_logits_max_abs_err"] = logits_error(merged, ids, expected["merged"])


def model_case(root, name, info):
    """Folders, ids and our engine's logits of models/<name>/ (written by make-hf-check.ts)."""
    folder = f"{root}/models/{name}"
    t = load_file(f"{folder}/expected.safetensors")
    rows = range(info["rows"])
    ids = [t[f"ids.{i}"].tolist() for i in rows]
    expected = {k: [t[f"logits.{k}.{i}"].numpy() for i in rows] for k in ("base", "adapter", "merged")}
    return {k: f"{folder}/{k}" for k in ("base", "adapter", "merged")}, ids, expected


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="hf-check", help="folder from make-hf-check.ts")
    ap.add_argument("--without-peft", action="store_true", help="skip the PeftModel check (no peft here)")
    args = ap.parse_args(argv)
    root = args.root

    peft_present = importlib.util.find_spec("peft") is not None
    if not args.without_peft and not peft_present:
        print("check_hf.py: peft is not installed; install it, or pass --without-peft", file=sys.stderr)
        return 2

    exp = json.load(open(f"{root}/expected.json"))
    report = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__}}
    tok = AutoTokenizer.from_pretrained(f"{root}/models/tiny/base")
    report["tokenizer_ids_equal"] = [tok.encode(t, add_special_tokens=False) for t in exp["texts"]] == exp["ids"]
    chats = exp["chats"]
    rendered = [
        tok.apply_chat_template(
            [{"role": r, "content": c} for r, c in chat["messages"]], tokenize=False, add_generation_prompt=True
        )
        for chat in chats
    ]
    report["chat_template_equal"] = rendered == [chat["rendered"] for chat in chats]
    # Special tokens in the render must be single added-token ids on both sides.
    ids = [tok.encode(t, add_special_tokens=False) for t in rendered]
    report["chat_ids_equal"] = ids == [chat["ids"] for chat in chats]

    use_peft = not args.without_peft
    if use_peft:
        from peft import __version__ as peft_version

        report["versions"]["peft"] = peft_version
    else:
        report["peft"] = PEFT_SKIPPED if not peft_present else "skipped by --without-peft: PeftModel check not run"

    # Every model (the tiny one first); one failing model is reported, not fatal, so the report covers them all.
    report["models"] = {}
    for name, info in exp["models"].items():
        result = {}
        try:
            folders, case_ids, expected = model_case(root, name, info)
            if name == "tiny" and case_ids != exp["ids"]:
                raise CheckError("models/tiny/expected.safetensors ids differ from expected.json's")
            check_model(result, folders, case_ids, expected, use_peft)
        except Exception as e:  # noqa: BLE001 - any failure is this model's result, reported in the JSON
            result["error"] = f"{type(e).__name__}: {e}"
        errs = [v for k, v in result.items() if k.endswith("_err")]
        result["ok"] = "error" not in result and "lora_hooks_error" not in result and all(v <= LOGITS_TOL for v in errs)
        report["models"][name] = result

    ok = (
        report["tokenizer_ids_equal"]
        and report["chat_template_equal"]
        and report["chat_ids_equal"]
        and "tiny" in report["models"]
        and len(report["models"]) > 1
        and all(m["ok"] for m in report["models"].values())
    )
    report["ok"] = bool(ok)
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
