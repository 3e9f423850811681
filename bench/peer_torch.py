#!/usr/bin/python3
"""peer_torch.py — the PyTorch eager peer of `lorajit bench`, run as a subprocess.

Reads a JSON spec (argv[1], written by bench/bench.c) naming a model and PEFT adapters
in HF layout, builds LLaMA in float32 from nn.Linear modules with LoRA as PEFT's Linear
computes it (base(x) + lora_B(lora_A(x)) * scaling, summed over active adapters), times
forward passes and swaps (param.data.copy_ of new A/B tensors), and prints one JSON
object on stdout: {"available", "versions", "forward", "swap", "agree"}. Threads: run
with OPENBLAS_NUM_THREADS set by the caller; torch's own threads are set to 1 (see
/work/shared/notes/machine-facts.md). Without torch it prints {"available": false}.
"""
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import torch
    from torch import nn
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from make_fixtures import load_adapter, read_safetensors  # safetensors + PEFT semantics
except Exception as exc:  # ImportError, or a broken install
    print(json.dumps({"available": False, "reason": f"python3-torch not usable: {exc}"}))
    sys.exit(0)

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL7 = ATTN + ("gate_proj", "up_proj", "down_proj")


class LoraLinear(nn.Module):
    """PEFT's lora.Linear forward (eval mode: dropout is identity)."""

    def __init__(self, base):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict()
        self.lora_B = nn.ModuleDict()
        self.scaling = {}
        self.active_adapters = []

    def add(self, name, A, B, scaling):
        r, k = A.shape
        n = B.shape[0]
        a = torch.nn.utils.skip_init(nn.Linear, k, r, bias=False)
        b = torch.nn.utils.skip_init(nn.Linear, r, n, bias=False)
        a.weight = nn.Parameter(A.contiguous(), requires_grad=False)
        b.weight = nn.Parameter(B.contiguous(), requires_grad=False)
        self.lora_A[name], self.lora_B[name] = a, b
        self.scaling[name] = scaling

    def forward(self, x):
        result = self.base_layer(x)
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            result = result + self.lora_B[name](self.lora_A[name](x)) * self.scaling[name]
        return result


def linear_from(W):
    out, inp = W.shape
    lin = torch.nn.utils.skip_init(nn.Linear, inp, out, bias=False)
    lin.weight = nn.Parameter(W, requires_grad=False)
    return lin


class Llama(nn.Module):
    """LlamaForCausalLM's forward (no biases, untied or tied head), float32, prefill from 0."""

    def __init__(self, cfg, W, lora):
        super().__init__()
        self.cfg = cfg
        self.dim, self.n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.hd = cfg.get("head_dim") or self.dim // self.n_heads
        self.eps, self.theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
        self.embed = W["model.embed_tokens.weight"]
        self.norm = W["model.norm.weight"]
        self.head = linear_from(W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings")
                                else W["lm_head.weight"])
        self.layers = nn.ModuleList()
        self.lora_layers = {}  # module path -> LoraLinear
        for L in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{L}."
            layer = nn.Module()
            layer.ln1, layer.ln2 = W[p + "input_layernorm.weight"], W[p + "post_attention_layernorm.weight"]
            for mod in ALL7:
                path = p + ("self_attn." if mod in ATTN else "mlp.") + mod
                lin = linear_from(W[path + ".weight"])
                if lora:
                    lin = LoraLinear(lin)
                    self.lora_layers[path] = lin
                setattr(layer, mod, lin)
            self.layers.append(layer)

    def rms_norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def forward(self, tokens):
        T, hd = tokens.shape[0], self.hd
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        angles = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        half = hd // 2

        def rope(x):
            return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin

        x = self.embed[tokens]
        for ly in self.layers:
            h = self.rms_norm(x, ly.ln1)
            q = ly.q_proj(h).view(T, self.n_heads, hd).transpose(0, 1)
            k = ly.k_proj(h).view(T, self.n_kv, hd).transpose(0, 1)
            v = ly.v_proj(h).view(T, self.n_kv, hd).transpose(0, 1)
            q, k = rope(q), rope(k)
            rep = self.n_heads // self.n_kv
            if rep > 1:
                k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
            o = (att @ v).transpose(0, 1).reshape(T, self.n_heads * hd)
            x = x + ly.o_proj(o)
            h = self.rms_norm(x, ly.ln2)
            x = x + ly.down_proj(torch.nn.functional.silu(ly.gate_proj(h)) * ly.up_proj(h))
        return self.head(self.rms_norm(x, self.norm))


def progress(what):
    """One progress line on stderr, rewritten in place on a terminal."""
    tty = sys.stderr.isatty()
    print(f"{chr(13) if tty else ''}          peer: {what:<62}", end="" if tty else "\n", file=sys.stderr, flush=True)


def timed(fn, reps):
    """1 warm-up, then reps timed calls; milliseconds."""
    fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"median": statistics.median(ms), "min": min(ms), "max": max(ms), "reps": reps}


def add_adapter(model, name, adapter_dir, cfg):
    """Adds adapter name to every LoraLinear it targets; returns {path: (A, B)}."""
    terms = {}
    for path, (A, B, scale) in load_adapter(adapter_dir, cfg).items():
        A, B = A.float(), B.float()
        model.lora_layers[path].add(name, A, B, scale)
        terms[path] = (A, B)
    return terms


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.set_num_threads(1)  # OpenBLAS threads come from OPENBLAS_NUM_THREADS
    torch.set_grad_enabled(False)
    with open(os.path.join(spec["model"], "config.json")) as f:
        cfg = json.load(f)
    W = read_safetensors(os.path.join(spec["model"], "model.safetensors"))
    plain = Llama(cfg, W, lora=False)
    peft = Llama(cfg, W, lora=True)
    for name, d in spec["adapters"].items():
        add_adapter(peft, name, d, cfg)

    out = {"available": True, "forward": {}, "swap": {}, "agree": {},
           "versions": {"torch": torch.__version__, "python": sys.version.split()[0],
                        "torch_threads": torch.get_num_threads(),
                        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "")}}
    for fc in spec["forward_configs"]:
        model = peft if fc["lora"] else plain
        for lin in peft.lora_layers.values():
            lin.active_adapters = list(fc["active"])
        res = out["forward"].setdefault(fc["name"], {})
        for T, toks in spec["tokens"].items():
            progress(f"forward {fc['name']}, {T} tokens")
            tokens = torch.tensor(toks, dtype=torch.long)
            res[T] = timed(lambda: model(tokens), spec["reps"][T])
            ref = spec.get("compare", {}).get(T, {}).get(fc["name"])
            if ref and os.path.exists(ref):
                got = model(tokens)
                with open(ref, "rb") as f:
                    want = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
                out["agree"][fc["name"]] = float((got.reshape(-1) - want).abs().max())

    for sw in spec["swaps"]:
        name = "swap_" + sw["name"]
        progress(f"swap {sw['name']}")
        first = add_adapter(peft, name, sw["a"], cfg)
        second = load_adapter(sw["b"], cfg)
        pairs = []  # (A param, B param, new A, new B, old A, old B)
        for path, (A, B) in first.items():
            lin = peft.lora_layers[path]
            nA, nB, _ = second[path]
            pairs.append((lin.lora_A[name].weight, lin.lora_B[name].weight,
                          nA.float(), nB.float(), A.clone(), B.clone()))
        flip = [0]

        def swap():
            k = flip[0] = flip[0] ^ 1
            for pa, pb, na, nb, oa, ob in pairs:
                pa.data.copy_(na if k else oa)
                pb.data.copy_(nb if k else ob)

        res = timed(swap, spec["swap_reps"])
        res["bytes"] = sum(4 * (p[2].numel() + p[3].numel()) for p in pairs)
        out["swap"][sw["name"]] = res
        for lin in peft.lora_layers.values():  # drop it again: memory stays bounded
            if name in lin.lora_A:
                del lin.lora_A[name], lin.lora_B[name]
                del lin.scaling[name]
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
