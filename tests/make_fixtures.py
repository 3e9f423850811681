#!/usr/bin/python3
"""make_fixtures.py — golden fixtures for lorajit: tiny random LLaMA models, PEFT LoRA
adapters and reference logits, computed by an independent PyTorch reference.

Recipe (run from anywhere, with Debian's python3 + torch 1.13; no transformers/peft):
    cmake -S . -B build-gen && cmake --build build-gen --target lorajit_gen
    /usr/bin/python3 tests/make_fixtures.py build-gen/lorajit_gen   # regenerate all
    /usr/bin/python3 tests/make_fixtures.py --no-gen             # only recompute expected/
    /usr/bin/python3 tests/make_fixtures.py --check-conformance  # only check the reference
    /usr/bin/python3 tests/make_fixtures.py --only-generate      # only expected/generate.json
    /usr/bin/python3 tests/make_fixtures.py build-gen/lorajit_gen --models phi3,gemma
        # (re)generate only those models and their adapters, then recompute expected/

Every mode first checks the reference against tests/conformance (PEFT + transformers
logits) and stops when the max abs error is over 2e-5.

The reference (tests/torch_reference.py) is LLaMA as transformers' LlamaForCausalLM
computes it, with PEFT LoRA semantics, and the families of issue 13 (FAMILIES, 20 tokens
each: qwen2, qwen3, mistral, phi3, gemma) as their modeling_<family>.py files do; its
docstring lists what each family changes. Everything is computed in float64 from the
stored weights and written as float32.

Greedy generations (expected/generate.json) recompute the whole sequence at every
step and argmax its last row; GEN_CASES lists them.

To add a case: add its adapter to ADAPTERS (if new) and a line to CASES; rerun.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import torch

from torch_reference import forward, load_adapter, load_model, read_safetensors, resolve_state  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
CONFORMANCE = os.path.join(HERE, "conformance")
TOKEN_COUNTS = (1, 5, 17)
TOLERANCE = {"atol": 2e-4, "rtol": 2e-4}
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")

# ----------------------------------------------------------------------------
# What to generate. Models: lorajit_gen model options. Adapters: lorajit_gen adapter
# options. Schema: what the engine is compiled with for every case of that model.

MODELS = {
    "gqa": ["--dim", "64", "--hidden", "128", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--vocab", "128", "--seed", "11"],
    "tied": ["--dim", "32", "--hidden", "96", "--layers", "2", "--heads", "4", "--kv-heads", "4",
             "--vocab", "96", "--tied", "--rope-theta", "500000", "--rms-eps", "1e-6", "--seed", "12"],
    "bias": ["--dim", "32", "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "1",
             "--vocab", "64", "--attention-bias", "--mlp-bias", "--seed", "13"],
    "bf16": ["--dim", "48", "--hidden", "96", "--layers", "2", "--heads", "4", "--kv-heads", "2",
             "--vocab", "96", "--dtype", "bf16", "--seed", "14"],
    "f16": ["--dim", "32", "--hidden", "64", "--layers", "2", "--heads", "2", "--kv-heads", "1",
            "--head-dim", "24", "--vocab", "64", "--dtype", "f16", "--seed", "15"],
    "sharded": ["--dim", "32", "--hidden", "64", "--layers", "3", "--heads", "4", "--kv-heads", "2",
                "--vocab", "64", "--shards", "2", "--seed", "16"],
}

# ---- the families (issue 13): Qwen2, Qwen3, Mistral, Phi-3, Gemma; GQA, 20 tokens > the window 8 ----
FAMILY_OPTS = ["--dim", "64", "--hidden", "96", "--layers", "2", "--heads", "4", "--kv-heads", "2",
               "--vocab", "100", "--rms-eps", "1e-6", "--rope-theta", "1000000"]
MODELS.update({
    "qwen2": ["--arch", "qwen2", "--tied"] + FAMILY_OPTS + ["--seed", "21"],
    "qwen3": ["--arch", "qwen3", "--head-dim", "24"] + FAMILY_OPTS + ["--seed", "22"],
    "mistral": ["--arch", "mistral", "--sliding-window", "8"] + FAMILY_OPTS + ["--seed", "23"],
    "phi3": ["--arch", "phi3", "--sliding-window", "8"] + FAMILY_OPTS + ["--seed", "24"],
    "gemma": ["--arch", "gemma", "--head-dim", "32"] + FAMILY_OPTS + ["--seed", "25"],
})
FAMILIES = ("qwen2", "qwen3", "mistral", "phi3", "gemma")
PHI3_ALL = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]  # modeling_phi3.py, as PEFT names them


def family_modules(f):
    """A family's LoRA-able linears: LLaMA's seven, or Phi-3's fused four."""
    return PHI3_ALL if f == "phi3" else ALL7
FAMILY_TOKEN_COUNTS = (1, 5, 20)

SCHEMAS = {
    "gqa": {"max_rank": 16, "target_modules": ALL7, "max_adapters": 4},
    "tied": {"max_rank": 8, "target_modules": ["q_proj", "v_proj"], "max_adapters": 2},
    "bias": {"max_rank": 8, "target_modules": ALL7, "max_adapters": 2},
    "bf16": {"max_rank": 8, "target_modules": list(ATTN), "max_adapters": 2},
    "f16": {"max_rank": 8, "target_modules": ALL7, "max_adapters": 2},
    "sharded": {"max_rank": 8, "target_modules": ALL7, "max_adapters": 2},
}
SCHEMAS.update({f: {"max_rank": 16, "target_modules": family_modules(f), "max_adapters": 4} for f in FAMILIES})

ADAPTERS = {
    "gqa": {
        "r8_qv": ["--r", "8", "--alpha", "16", "--targets", "q_proj,v_proj", "--seed", "101"],
        "r4_all": ["--r", "4", "--alpha", "8", "--targets", ",".join(ALL7), "--seed", "102"],
        "r2_mlp": ["--r", "2", "--alpha", "4", "--targets", "gate_proj,up_proj,down_proj",
                   "--dtype", "bf16", "--seed", "103"],
        "rslora": ["--r", "16", "--alpha", "8", "--rslora", "--targets", "q_proj,k_proj,v_proj,o_proj",
                   "--seed", "104"],
        "patterns": ["--r", "4", "--alpha", "8", "--targets", "q_proj,k_proj,v_proj,o_proj,down_proj",
                     "--rank-pattern", "q_proj=8,model.layers.1.mlp.down_proj=2",
                     "--alpha-pattern", "v_proj=32,layers.0.self_attn.o_proj=3", "--seed", "105"],
        "layers1": ["--r", "8", "--alpha", "8", "--targets", ",".join(ALL7), "--layers", "1",
                    "--dtype", "f16", "--seed", "106"],
        "regex": ["--r", "4", "--alpha", "4", "--target-regex",
                  r".*\.layers\.0\.self_attn\.(q|k)_proj|.*\.layers\.1\.mlp\.up_proj", "--seed", "107"],
        "r2_kou": ["--r", "2", "--alpha", "6", "--rslora", "--targets", "k_proj,o_proj,up_proj",
                   "--rank-pattern", "up_proj=3", "--seed", "108"],
    },
    "tied": {"qv": ["--r", "8", "--alpha", "16", "--targets", "q_proj,v_proj", "--seed", "201"]},
    "bias": {"all": ["--r", "4", "--alpha", "8", "--targets", ",".join(ALL7), "--seed", "301"]},
    "bf16": {
        "qkvo": ["--r", "8", "--alpha", "8", "--targets", "q_proj,k_proj,v_proj,o_proj", "--dtype", "bf16",
                 "--seed", "401"],
        "qv32": ["--r", "4", "--alpha", "8", "--targets", "q_proj,v_proj", "--seed", "402"],
    },
    "f16": {"all": ["--r", "4", "--alpha", "8", "--targets", ",".join(ALL7), "--dtype", "f16",
                    "--seed", "501"]},
    "sharded": {"all_l02": ["--r", "4", "--alpha", "8", "--targets", ",".join(ALL7), "--layers", "0,2",
                            "--seed", "601"]},
}
for i, f in enumerate(FAMILIES):
    qv = "qkv_proj" if f == "phi3" else "q_proj,v_proj"  # Phi-3: q and v live in the fused qkv_proj
    every = ",".join(family_modules(f))
    ADAPTERS[f] = {
        "r8_qv": ["--r", "8", "--alpha", "16", "--targets", qv, "--seed", str(701 + 10 * i)],
        "r4_all": ["--r", "4", "--alpha", "8", "--targets", every, "--seed", str(702 + 10 * i)],
        "rslora": ["--r", "16", "--alpha", "8", "--rslora", "--targets", every, "--seed", str(703 + 10 * i)],
    }


def single(name):
    return {"loaded": [name], "active": [name]}


THREE = ["r8_qv", "r4_all", "r2_mlp"]
CASES = [  # (model, case name, state, what it covers)
    ("gqa", "base", {"active": []}, "GQA base model (4 heads, 2 KV heads)"),
    ("gqa", "r8_qv", single("r8_qv"), "r 8 alpha 16 on q,v"),
    ("gqa", "r4_all", single("r4_all"), "r 4 on all seven projections"),
    ("gqa", "r2_mlp", single("r2_mlp"), "r 2 on gate,up,down; bf16 adapter on f32 model"),
    ("gqa", "rslora", single("rslora"), "use_rslora, r 16 = max_rank (scale alpha/sqrt(r))"),
    ("gqa", "patterns", single("patterns"), "rank_pattern + alpha_pattern (short and full keys)"),
    ("gqa", "layers1", single("layers1"), "layers_to_transform [1]; f16 adapter"),
    ("gqa", "regex", single("regex"), "target_modules as a regex string"),
    ("gqa", "r2_kou", single("r2_kou"), "rslora with rank_pattern giving rank 3"),
    ("gqa", "multi_weighted", {"loaded": THREE, "active": ["r8_qv", "r4_all"], "weights": [0.5, -1.25]},
     "two active adapters with weights 0.5, -1.25"),
    ("gqa", "multi_three", {"loaded": THREE, "active": THREE}, "three active adapters, weights 1"),
    ("gqa", "multi_four", {"loaded": ["rslora", "patterns", "regex", "layers1"],
                           "active": ["rslora", "patterns", "regex", "layers1"],
                           "weights": [1.0, 0.75, -0.5, 2.0]}, "all 4 slots active, mixed ranks"),
    ("gqa", "disabled", {"loaded": THREE, "active": ["r8_qv", "r4_all"], "weights": [0.5, -1.25],
                         "disabled": True}, "disable gives the base model"),
    ("gqa", "none_active", {"loaded": ["r8_qv"], "active": []}, "loaded but inactive gives the base"),
    ("gqa", "hotswap", {"loaded": ["slot"], "dirs": {"slot": "r8_qv"}, "hotswap": [["slot", "r2_kou"]],
                        "active": ["slot"]}, "hotswap r8 q,v -> r2/r3 rslora k,o,up"),
    ("gqa", "hotswap_multi", {"loaded": ["r4_all", "slot"], "dirs": {"slot": "r2_mlp"},
                              "hotswap": [["slot", "regex"], ["slot", "rslora"]],
                              "active": ["slot", "r4_all"], "weights": [-0.75, 1.0]},
     "two hotswaps in a row, next to another active adapter"),
    ("gqa", "after_delete", {"loaded": ["r8_qv", "r2_mlp"], "deleted": ["r4_all"],
                             "active": ["r8_qv", "r2_mlp"], "weights": [-1.25, 0.5]},
     "delete one of three, the others weighted"),
    ("tied", "base", {"active": []}, "tied embeddings, MHA, rope_theta 5e5, eps 1e-6"),
    ("tied", "qv", single("qv"), "r 8 = max_rank on a q,v-only schema"),
    ("bias", "base", {"active": []}, "attention_bias + mlp_bias, one KV head (MQA)"),
    ("bias", "all", single("all"), "LoRA on biased linears"),
    ("bf16", "base", {"active": []}, "bf16 model, head_dim 12"),
    ("bf16", "qkvo", single("qkvo"), "bf16 adapter on bf16 model"),
    ("bf16", "multi", {"loaded": ["qkvo", "qv32"], "active": ["qkvo", "qv32"], "weights": [1.0, -1.25]},
     "bf16 + f32 adapters together"),
    ("f16", "base", {"active": []}, "f16 model, head_dim 24 != hidden/heads"),
    ("f16", "all", single("all"), "f16 adapter, q_proj [48, 32], o_proj [32, 48]"),
    ("sharded", "base", {"active": []}, "2 safetensors shards + index, 3 layers"),
    ("sharded", "all_l02", single("all_l02"), "layers_to_transform [0, 2]"),
]

for f in FAMILIES:
    CASES += [
        (f, "base", {"active": []}, f"{f}: base model"),
        (f, "r8_qv", single("r8_qv"), f"{f}: r 8 alpha 16 on q,v" + (" (qkv_proj)" if f == "phi3" else "")),
        (f, "r4_all", single("r4_all"), f"{f}: r 4 on every linear"),
        (f, "rslora", single("rslora"), f"{f}: use_rslora r 16 on every linear"),
        (f, "multi_weighted", {"loaded": ["r8_qv", "r4_all"], "active": ["r8_qv", "r4_all"],
                               "weights": [0.5, -1.25]}, f"{f}: two adapters weighted 0.5, -1.25"),
        (f, "disabled", {"loaded": ["r8_qv", "r4_all"], "active": ["r8_qv", "r4_all"], "weights": [0.5, -1.25],
                         "disabled": True}, f"{f}: disabled gives the base model"),
    ]

# Greedy generation references: (model, state name from CASES, new tokens). The prompt
# is the first of a seeded series whose top-2 logit margin stays over GEN_MARGIN at
# every step, so an fp32 engine cannot flip an argmax the float64 reference made.
GEN_CASES = [("gqa", "base", 12), ("gqa", "r8_qv", 12), ("gqa", "multi_weighted", 12),
             ("gqa", "hotswap", 12), ("tied", "qv", 12), ("bias", "all", 12)]
GEN_PROMPT_LEN = 5
GEN_MARGIN = 1e-3

# ----------------------------------------------------------------------------
# modes


def check_conformance(verbose):
    """Reproduces tests/conformance/expected/*.bin; returns the max abs error."""
    with open(os.path.join(CONFORMANCE, "expected", "index.json")) as f:
        index = json.load(f)
    models, cache, worst = {}, {}, 0.0
    for case in index["cases"]:
        m = case["model"]
        if m not in models:
            models[m] = load_model(os.path.join(CONFORMANCE, "models", m))
        cfg, W = models[m]
        lora = resolve_state(case["state"], os.path.join(CONFORMANCE, "adapters", m), cfg, cache.setdefault(m, {}))
        got = forward(cfg, W, case["tokens"], lora)
        with open(os.path.join(CONFORMANCE, "expected", case["file"]), "rb") as f:
            want = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).double().reshape(case["shape"])
        err = (got - want).abs().max().item()
        worst = max(worst, err)
        if verbose:
            print(f"  {case['case']:36s} max|err| {err:.3e}")
    print(f"conformance: {len(index['cases'])} cases, max abs error {worst:.3e}")
    return worst


def run_gen(gen, args):
    subprocess.run([gen] + args, cwd=GOLDEN, check=True)


def generate(gen, only=None):
    """Writes every model of MODELS and its adapters (only: those models alone, the
    others' files kept)."""
    os.makedirs(GOLDEN, exist_ok=True)
    if only is None:
        for sub in ("models", "adapters", "expected"):
            shutil.rmtree(os.path.join(GOLDEN, sub), ignore_errors=True)
    for m, opts in MODELS.items():
        if only is not None and m not in only:
            continue
        for sub in ("models", "adapters"):
            shutil.rmtree(os.path.join(GOLDEN, sub, m), ignore_errors=True)
        run_gen(gen, ["model", f"models/{m}"] + opts)
        for a, aopts in ADAPTERS[m].items():
            run_gen(gen, ["adapter", f"adapters/{m}/{a}", "--model", f"models/{m}"] + aopts)
    if only is None or {"bf16", "f16"} & set(only):
        check_dtype_rounding(gen)


def check_dtype_rounding(gen):
    """The generator's f16/bf16 rounding must equal torch's (round to nearest even)."""
    with tempfile.TemporaryDirectory() as tmp:
        for m in ("bf16", "f16"):
            opts = list(MODELS[m])
            i = opts.index("--dtype")
            dtype = torch.bfloat16 if opts[i + 1] == "bf16" else torch.float16
            opts[i + 1] = "f32"
            subprocess.run([gen, "model", os.path.join(tmp, m)] + opts, check=True)
            ref = read_safetensors(os.path.join(tmp, m, "model.safetensors"))
            got = read_safetensors(os.path.join(GOLDEN, "models", m, "model.safetensors"))
            for k in ref:
                assert torch.equal(ref[k].to(dtype).float(), got[k]), f"{m}: {k}: rounding differs"


def compute_expected():
    exp_dir = os.path.join(GOLDEN, "expected")
    shutil.rmtree(exp_dir, ignore_errors=True)
    os.makedirs(exp_dir)
    models, cache, base, cases = {}, {}, {}, []
    total = 0
    for m, name, state, what in CASES:
        if m not in models:
            models[m] = load_model(os.path.join(GOLDEN, "models", m))
        cfg, W = models[m]
        lora = resolve_state(state, os.path.join(GOLDEN, "adapters", m), cfg, cache.setdefault(m, {}))
        deltas = []
        for n in (FAMILY_TOKEN_COUNTS if m in FAMILIES else TOKEN_COUNTS):
            rng = random.Random(f"{m}-{n}")
            tokens = [rng.randrange(cfg["vocab_size"]) for _ in range(n)]
            logits = forward(cfg, W, tokens, lora).float()
            if name == "base":
                base[(m, n)] = logits
            deltas.append((logits - base[(m, n)]).abs().max().item())
            case = f"{m}__{name}__s{n}"
            blob = logits.contiguous().numpy().astype("<f4").tobytes()
            with open(os.path.join(exp_dir, case + ".bin"), "wb") as f:
                f.write(blob)
            total += len(blob)
            cases.append({"case": case, "model": m, "state": state, "schema": SCHEMAS[m], "tokens": tokens,
                          "file": case + ".bin", "shape": list(logits.shape)})
        print(f"  {m + '__' + name:24s} max|logits-base| {max(deltas):8.4f}  {what}")
    with open(os.path.join(exp_dir, "index.json"), "w") as f:
        json.dump({"cases": cases, "tolerance": TOLERANCE}, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases ({len(CASES)} states x token counts {TOKEN_COUNTS}, families "
          f"{FAMILY_TOKEN_COUNTS}) in {exp_dir}")


def greedy(cfg, W, prompt, lora, max_new):
    """Greedy tokens and the smallest top-2 margin over the steps; the whole sequence
    is recomputed at every step (no KV cache), so nothing is shared with lorajit."""
    tokens, margin = list(prompt), math.inf
    for _ in range(max_new):
        row = forward(cfg, W, tokens, lora)[-1]
        top2 = torch.topk(row, 2).values
        margin = min(margin, (top2[0] - top2[1]).item())
        tokens.append(int(torch.argmax(row).item()))
    return tokens[len(prompt):], margin


def compute_generations():
    """Writes expected/generate.json: greedy generations for GEN_CASES."""
    states = {(m, name): state for m, name, state, _ in CASES}
    models, cache, out = {}, {}, []
    for m, name, max_new in GEN_CASES:
        if m not in models:
            models[m] = load_model(os.path.join(GOLDEN, "models", m))
        cfg, W = models[m]
        state = states[(m, name)]
        lora = resolve_state(state, os.path.join(GOLDEN, "adapters", m), cfg, cache.setdefault(m, {}))
        rng = random.Random(f"generate-{m}-{name}")
        for attempt in range(100):
            prompt = [rng.randrange(cfg["vocab_size"]) for _ in range(GEN_PROMPT_LEN)]
            tokens, margin = greedy(cfg, W, prompt, lora, max_new)
            if margin > GEN_MARGIN:
                break
        else:
            sys.exit(f"{m}/{name}: no prompt with a top-2 margin over {GEN_MARGIN} in 100 tries")
        print(f"  generate {m + '__' + name:24s} prompt {prompt} -> {tokens} (margin {margin:.2e}, "
              f"try {attempt + 1})")
        out.append({"case": f"{m}__{name}", "model": m, "schema": SCHEMAS[m], "state": state,
                    "prompt": prompt, "max_new": max_new, "tokens": tokens, "min_margin": margin})
    with open(os.path.join(GOLDEN, "expected", "generate.json"), "w") as f:
        json.dump({"cases": out, "margin": GEN_MARGIN}, f, indent=1)
        f.write("\n")
    print(f"{len(out)} greedy generations in {os.path.join(GOLDEN, 'expected', 'generate.json')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gen", nargs="?", default=os.path.join(HERE, "..", "build", "lorajit_gen"),
                    help="path to lorajit_gen (default ../build/lorajit_gen)")
    ap.add_argument("--check-conformance", action="store_true",
                    help="only check the reference against tests/conformance (max error 2e-5)")
    ap.add_argument("--no-gen", action="store_true", help="keep models/adapters; only recompute expected/")
    ap.add_argument("--models", help="comma-separated: (re)generate only these models and their adapters")
    ap.add_argument("--only-generate", action="store_true",
                    help="only recompute expected/generate.json (greedy generations)")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    worst = check_conformance(verbose=args.check_conformance)
    if worst > 2e-5:
        sys.exit("the reference does not reproduce tests/conformance within 2e-5")
    if args.check_conformance:
        return
    if args.only_generate:
        compute_generations()
        return
    if not args.no_gen:
        generate(os.path.abspath(args.gen), args.models.split(",") if args.models else None)
    compute_expected()
    compute_generations()
    # ---- RoPE scaling fixtures (tests/golden/rope): their own script and reference ----
    import make_rope_fixtures
    make_rope_fixtures.main()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(GOLDEN) for f in fs)
    print(f"tests/golden: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
