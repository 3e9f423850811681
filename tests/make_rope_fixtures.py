#!/usr/bin/python3
"""make_rope_fixtures.py — RoPE scaling fixtures: one small random LLaMA (GQA) per
rope_scaling type with reference logits from an independent PyTorch reference.

Recipe (Debian's python3 + torch 1.13; no transformers): run from anywhere,
    /usr/bin/python3 tests/make_rope_fixtures.py
or as part of tests/make_fixtures.py (which calls main() at its end).

Writes tests/golden/rope/:
  models/<type>/config.json + model.safetensors (F32; the same weights for every type,
      so git stores them once): dim 32, intermediate 64, 2 layers, 4 heads / 2 KV heads,
      head_dim 16, vocab 64, tied; original max positions 16 and sequences of 40.
  expected/<type>__full.bin: logits [40, vocab] of one forward over the 40 tokens
      (transformers' forward: one RoPE table for seq_len = 40).
  expected/<type>__gen.bin: logits [40, vocab] as transformers' generate() makes them:
      a prefill of PREFILL tokens (table for seq_len = PREFILL), then one token a step
      at position p with the table for seq_len = p + 1 (dynamic_rope_update), the keys
      already cached keeping the rotation they were computed with. For the types whose
      table does not depend on the length, gen == full up to rounding.
  expected/tables.json: inv_freq + scale of each type at a few sequence lengths.
  expected/index.json: tokens, prefill length, files, tolerance.

The reference follows transformers' modeling_rope_utils.py (named per function below)
and LlamaRotaryEmbedding: inv_freq in float32, angles = float32(inv_freq * position),
cos/sin times attention_scaling; the rest of the block in float64.
"""
import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden", "rope")
N_TOKENS, PREFILL, ORIG = 40, 8, 16
BASE = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 64, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32"}
HALF = BASE["head_dim"] // 2
SHORT = [1.0 + 0.05 * i for i in range(HALF)]
LONG = [1.0 + 0.9 * i for i in range(HALF)]
TYPES = {
    "default": {"max_position_embeddings": 64, "rope_scaling": None},
    "linear": {"max_position_embeddings": 64, "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
    "dynamic": {"max_position_embeddings": ORIG, "rope_scaling": {"type": "dynamic", "factor": 2.0}},
    "yarn": {"max_position_embeddings": 64, "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                                             "original_max_position_embeddings": ORIG}},
    "longrope": {"max_position_embeddings": 64, "original_max_position_embeddings": ORIG,
                 "rope_scaling": {"type": "longrope", "short_factor": SHORT, "long_factor": LONG}},
    "llama3": {"max_position_embeddings": 64, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                               "original_max_position_embeddings": ORIG}},
}


# ---- RoPE tables: (inv_freq float32 [dim/2], attention scale) for a call ending at seq_len


def default_inv(base, dim):
    """_compute_default_rope_parameters"""
    return 1.0 / (torch.tensor(base, dtype=torch.float32) ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))


def rope_table(cfg, seq_len):
    rs, dim, theta = cfg.get("rope_scaling"), cfg["head_dim"], cfg["rope_theta"]
    mpe = cfg["max_position_embeddings"]
    kind = (rs or {}).get("rope_type", (rs or {}).get("type", "default"))
    if kind == "default":
        return default_inv(theta, dim), 1.0
    if kind == "linear":  # _compute_linear_scaling_rope_parameters
        return default_inv(theta, dim) / rs["factor"], 1.0
    if kind == "dynamic":  # _compute_dynamic_ntk_parameters, seq_len from dynamic_rope_update
        s = seq_len if seq_len > mpe else mpe
        base = theta * ((rs["factor"] * s / mpe) - (rs["factor"] - 1)) ** (dim / (dim - 2))
        return default_inv(base, dim), 1.0
    if kind == "yarn":  # _compute_yarn_parameters (original max in rope_scaling: factor = mpe / original)
        factor, orig = rs["factor"], mpe
        if "original_max_position_embeddings" in rs:
            orig = rs["original_max_position_embeddings"]
            factor = mpe / orig
        mscale = lambda s, m=1: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        attn = rs.get("attention_factor")
        if attn is None:
            if rs.get("mscale") and rs.get("mscale_all_dim"):
                attn = mscale(factor, rs["mscale"]) / mscale(factor, rs["mscale_all_dim"])
            else:
                attn = mscale(factor)
        fast, slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1
        cdim = lambda r: (dim * math.log(orig / (r * 2 * math.pi))) / (2 * math.log(theta))
        low, high = cdim(fast), cdim(slow)
        if rs.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        pos_freqs = torch.tensor(theta, dtype=torch.float32) ** (torch.arange(0, dim, 2).float() / dim)
        extra = 1 - ramp
        inv = (1.0 / (factor * pos_freqs)) * (1 - extra) + (1.0 / pos_freqs) * extra
        return inv, attn
    if kind in ("longrope", "su"):  # _compute_longrope_parameters + the longrope update
        orig, factor = mpe, rs.get("factor")
        if "original_max_position_embeddings" in cfg:
            orig = cfg["original_max_position_embeddings"]
            factor = mpe / orig
        attn = rs.get("attention_factor")
        if attn is None:
            attn = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=torch.float32)
        shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
        return 1.0 / (ext * torch.tensor(theta, dtype=torch.float32) ** shape), attn
    if kind == "llama3":  # _compute_llama3_parameters
        inv = default_inv(theta, dim)
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
        return torch.where(medium, smoothed, inv_l), 1.0
    raise ValueError(kind)


# ---- the model


def make_weights():
    g = torch.Generator().manual_seed(1234)
    c = BASE
    dim, hid, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    rnd = lambda *s: (torch.randn(*s, generator=g) * 0.15).float()
    W = {"model.embed_tokens.weight": rnd(c["vocab_size"], dim),
         "model.norm.weight": (1 + 0.1 * torch.randn(dim, generator=g)).float()}
    for L in range(c["num_hidden_layers"]):
        p = f"model.layers.{L}."
        W[p + "input_layernorm.weight"] = (1 + 0.1 * torch.randn(dim, generator=g)).float()
        W[p + "post_attention_layernorm.weight"] = (1 + 0.1 * torch.randn(dim, generator=g)).float()
        for name, shape in (("self_attn.q_proj", (q, dim)), ("self_attn.k_proj", (kv, dim)),
                            ("self_attn.v_proj", (kv, dim)), ("self_attn.o_proj", (dim, q)),
                            ("mlp.gate_proj", (hid, dim)), ("mlp.up_proj", (hid, dim)),
                            ("mlp.down_proj", (dim, hid))):
            W[p + name + ".weight"] = rnd(*shape)
    return W


def write_safetensors(path, W):
    header, off, blobs = {}, 0, []
    for k in sorted(W):
        b = W[k].contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(W[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def step(cfg, W, tokens, pos0, cache, table):
    """Logits of tokens at positions pos0.. (float64), appending K/V to cache (a list per layer)."""
    inv, scale = table
    n_h, n_kv, hd, eps = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["rms_norm_eps"]
    T = len(tokens)
    pos = torch.arange(pos0, pos0 + T, dtype=torch.float32)
    ang = (pos[:, None] * inv[None, :]).double()  # float32 product, as LlamaRotaryEmbedding
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos() * scale, emb.sin() * scale
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        lin = lambda v, name: v @ W[p + name + ".weight"].T
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(h, "self_attn.q_proj").view(T, n_h, hd).transpose(0, 1)
        k = lin(h, "self_attn.k_proj").view(T, n_kv, hd).transpose(0, 1)
        v = lin(h, "self_attn.v_proj").view(T, n_kv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if L not in cache:
            cache[L] = (k, v)
        else:
            cache[L] = (torch.cat((cache[L][0], k), 1), torch.cat((cache[L][1], v), 1))
        K = cache[L][0].repeat_interleave(n_h // n_kv, dim=0)
        V = cache[L][1].repeat_interleave(n_h // n_kv, dim=0)
        S = pos0 + T
        mask = torch.full((T, S), float("-inf"), dtype=torch.float64).triu(pos0 + 1)
        att = torch.softmax(q @ K.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        x = x + lin((att @ V).transpose(0, 1).reshape(T, n_h * hd), "self_attn.o_proj")
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(torch.nn.functional.silu(lin(h, "mlp.gate_proj")) * lin(h, "mlp.up_proj"), "mlp.down_proj")
    x = rms_norm(x, W["model.norm.weight"], eps)
    return x @ W["model.embed_tokens.weight"].T


def write_bin(path, t):
    with open(path, "wb") as f:
        f.write(t.float().contiguous().numpy().astype("<f4").tobytes())


def main():
    torch.set_grad_enabled(False)
    W32 = make_weights()
    W = {k: v.double() for k, v in W32.items()}
    g = torch.Generator().manual_seed(99)
    tokens = torch.randint(0, BASE["vocab_size"], (N_TOKENS,), generator=g).tolist()
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    index, tables = {"tokens": tokens, "prefill": PREFILL, "orig": ORIG, "cases": [],
                     "tolerance": {"atol": 2e-4, "rtol": 2e-4}}, {}
    for kind, extra in TYPES.items():
        cfg = dict(BASE, **extra)
        d = os.path.join(OUT, "models", kind)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), W32)
        full = step(cfg, W, tokens, 0, {}, rope_table(cfg, N_TOKENS))
        cache = {}
        rows = [step(cfg, W, tokens[:PREFILL], 0, cache, rope_table(cfg, PREFILL))]
        for p in range(PREFILL, N_TOKENS):
            rows.append(step(cfg, W, tokens[p:p + 1], p, cache, rope_table(cfg, p + 1)))
        gen = torch.cat(rows, 0)
        write_bin(os.path.join(OUT, "expected", f"{kind}__full.bin"), full)
        write_bin(os.path.join(OUT, "expected", f"{kind}__gen.bin"), gen)
        index["cases"].append({"type": kind, "model": f"models/{kind}", "full": f"{kind}__full.bin",
                               "gen": f"{kind}__gen.bin", "shape": [N_TOKENS, BASE["vocab_size"]]})
        tables[kind] = {str(s): {"inv_freq": [float(x) for x in rope_table(cfg, s)[0]],
                                 "scale": float(rope_table(cfg, s)[1])} for s in (8, 16, 17, 40)}
        print(f"rope {kind:9s} max|full - gen| {(full - gen).abs().max().item():.3e}")
    with open(os.path.join(OUT, "expected", "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "expected", "tables.json"), "w") as f:
        json.dump(tables, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
