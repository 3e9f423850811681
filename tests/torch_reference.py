"""torch_reference.py — the independent float64 PyTorch reference of tests/make_fixtures.py:
safetensors reading, the model as transformers computes it, PEFT LoRA semantics.

Written from transformers' modeling files (no transformers/peft installed): LLaMA
(modeling_llama.py LlamaForCausalLM: RMSNorm x*rsqrt(mean(x^2)+eps)*w, rotate_half RoPE,
repeat_kv GQA, causal softmax scaled by 1/sqrt(head_dim), SwiGLU, optional biases, tied
lm_head) and the families of issue 13, each where forward() branches on it:
  qwen2   modeling_qwen2.py Qwen2Attention: q,k,v biased, o not;
  qwen3   modeling_qwen3.py Qwen3Attention.forward: q_norm / k_norm per head before RoPE;
  mistral masking_utils.sliding_window_overlay (create_sliding_window_causal_mask):
          key j visible to query i iff i - window < j <= i;
  phi3    modeling_phi3.py Phi3Attention.forward (qkv_proj split q | k | v), Phi3MLP.forward
          (gate, up = gate_up_proj(x).chunk(2); up * silu(gate)), the sliding window as mistral;
  gemma   modeling_gemma.py GemmaRMSNorm.forward (x*rsqrt(mean(x^2)+eps) * (1 + w)),
          GemmaMLP.forward (gelu_pytorch_tanh(gate) * up), GemmaModel.forward (embeddings
          times torch.tensor(hidden_size**0.5, dtype=float32)), tied lm_head by default.
LoRA: y = Wx + b + sum_i w_i * scale_i * B_i A_i x; scale = alpha/r or alpha/sqrt(r) with
rslora; rank_pattern / alpha_pattern; layers_to_transform; regex target_modules; on
Phi-3 the slots sit on the fused linears, as PEFT targets them.
"""
import json
import math
import os
import re
import struct
import sys

import torch

ATTN = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj")

# ----------------------------------------------------------------------------
# safetensors reader


def read_safetensors(path):
    """Returns {name: float32 tensor} for an F32, F16 or BF16 safetensors file."""
    assert sys.byteorder == "little"
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        buf = bytearray(data[base + begin:base + end])
        if info["dtype"] == "F32":
            t = torch.frombuffer(buf, dtype=torch.float32)
        elif info["dtype"] == "F16":
            t = torch.frombuffer(buf, dtype=torch.float16).float()
        elif info["dtype"] == "BF16":
            t = (torch.frombuffer(buf, dtype=torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}")
        out[name] = t.reshape(info["shape"]).clone()
    return out


def load_model(model_dir):
    """Returns (config dict, {name: float64 tensor}); checks every shape against the config."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        for shard in sorted(set(weight_map.values())):
            part = read_safetensors(os.path.join(model_dir, shard))
            assert sorted(part) == sorted(k for k, v in weight_map.items() if v == shard), shard
            weights.update(part)
    else:
        weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    dim, vocab = cfg["hidden_size"], cfg["vocab_size"]
    want = {"model.embed_tokens.weight": [vocab, dim], "model.norm.weight": [dim]}
    if not tied(cfg):
        want["lm_head.weight"] = [vocab, dim]
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        want[p + "input_layernorm.weight"] = [dim]
        want[p + "post_attention_layernorm.weight"] = [dim]
        for mod, (out, inp) in linear_shapes(cfg).items():
            want[p + module_kind(mod) + "." + mod + ".weight"] = [out, inp]
            if has_bias(cfg, mod):
                want[p + module_kind(mod) + "." + mod + ".bias"] = [out]
        if cfg.get("model_type") == "qwen3":
            hd = linear_shapes(cfg)["k_proj"][0] // (cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
            want[p + "self_attn.q_norm.weight"] = [hd]
            want[p + "self_attn.k_norm.weight"] = [hd]
    got = {k: list(v.shape) for k, v in weights.items()}
    assert got == want, f"{model_dir}: tensors differ from config: {set(got) ^ set(want)}"
    return cfg, {k: v.double() for k, v in weights.items()}


def tied(cfg):
    """tie_word_embeddings; absent: GemmaConfig's default True, else False."""
    return bool(cfg.get("tie_word_embeddings", cfg.get("model_type") == "gemma"))


def has_bias(cfg, mod):
    """Whether module mod carries a bias, per family (transformers' modeling_<family>.py):
    qwen2 Qwen2Attention: q,k,v always, o never, MLP never; qwen3 Qwen3Attention and gemma
    GemmaAttention: attention_bias on q,k,v,o, MLP never; mistral, phi3 (Phi3Attention,
    Phi3MLP: bias=False): none; llama: attention_bias, mlp_bias."""
    family = cfg.get("model_type", "llama")
    if family == "qwen2":
        return mod in ("q_proj", "k_proj", "v_proj")
    if family in ("mistral", "phi3"):
        return False
    if family in ("qwen3", "gemma"):
        return mod in ATTN and bool(cfg.get("attention_bias"))
    return bool(cfg.get("attention_bias" if mod in ATTN else "mlp_bias"))


def module_kind(mod):
    return "self_attn" if mod in ATTN else "mlp"


def linear_shapes(cfg):
    """{module: (out, in)} of a layer's linears: LLaMA's seven, or Phi-3's four
    (modeling_phi3.py: qkv_proj [q + 2 kv, dim], gate_up_proj [2 hidden, dim])."""
    dim, hidden = cfg["hidden_size"], cfg["intermediate_size"]
    n_heads = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    hd = cfg.get("head_dim") or dim // n_heads
    q, kv = n_heads * hd, n_kv * hd
    if cfg.get("model_type") == "phi3":
        return {"qkv_proj": (q + 2 * kv, dim), "o_proj": (dim, q), "gate_up_proj": (2 * hidden, dim),
                "down_proj": (dim, hidden)}
    return {"q_proj": (q, dim), "k_proj": (kv, dim), "v_proj": (kv, dim), "o_proj": (dim, q),
            "gate_proj": (hidden, dim), "up_proj": (hidden, dim), "down_proj": (dim, hidden)}


# ----------------------------------------------------------------------------
# PEFT LoRA semantics


def peft_targets(acfg, key):
    """PEFT's check_target_module_exists (layers_pattern unset)."""
    targets = acfg["target_modules"]
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    if key in targets:
        return True
    found = any(key.endswith("." + t) for t in targets)
    layers = acfg.get("layers_to_transform")
    if found and layers is not None and (not isinstance(layers, list) or layers):
        m = re.match(r".*\.[^.]*\.(\d+)\.", key)
        if m is None:
            return False
        idx = int(m.group(1))
        return idx == layers if isinstance(layers, int) else idx in layers
    return found


def peft_pattern_key(keys, key):
    """PEFT's get_pattern_key: the first pattern key fully matching (.*\\.)?KEY."""
    for k in keys:
        if re.match(rf"(.*\.)?({k})$", key):
            return k
    return key


def load_adapter(adapter_dir, cfg):
    """Returns {module path: (A [r, in], B [out, r], scale)}; checks the file against
    what PEFT would create from adapter_config.json."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    assert acfg["peft_type"] == "LORA" and not acfg.get("use_dora") and acfg.get("bias", "none") == "none"
    shapes = linear_shapes(cfg)
    out, seen = {}, set()
    for L in range(cfg["num_hidden_layers"]):
        for mod in shapes:
            key = f"model.layers.{L}.{module_kind(mod)}.{mod}"
            if not peft_targets(acfg, key):
                continue
            r = acfg["rank_pattern"].get(peft_pattern_key(acfg["rank_pattern"].keys(), key), acfg["r"])
            alpha = acfg["alpha_pattern"].get(peft_pattern_key(acfg["alpha_pattern"].keys(), key),
                                              acfg["lora_alpha"])
            scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
            a_name, b_name = f"base_model.model.{key}.lora_A.weight", f"base_model.model.{key}.lora_B.weight"
            A, B = tensors[a_name], tensors[b_name]
            o, i = shapes[mod]
            assert list(A.shape) == [r, i] and list(B.shape) == [o, r], f"{adapter_dir}: {key} shapes"
            out[key] = (A.double(), B.double(), scale)
            seen |= {a_name, b_name}
    assert seen == set(tensors), f"{adapter_dir}: tensors PEFT would not create: {set(tensors) - seen}"
    return out


def resolve_state(state, adapter_root, cfg, cache):
    """Returns {module path: [(A, B, weight * scale), ...]} for the served adapters."""
    dirs = state.get("dirs", {})
    resident = {n: dirs.get(n, n) for n in state.get("loaded", []) + state.get("deleted", [])}
    for name, d in state.get("hotswap", []):
        assert name in resident, name
        resident[name] = d
    for name in state.get("deleted", []):
        del resident[name]
    lora = {}
    if state.get("disabled"):
        return lora
    active = state["active"]
    weights = state.get("weights", [1.0] * len(active))
    for name, w in zip(active, weights):
        d = resident[name]
        if d not in cache:
            cache[d] = load_adapter(os.path.join(adapter_root, d), cfg)
        for key, (A, B, scale) in cache[d].items():
            lora.setdefault(key, []).append((A, B, w * scale))
    return lora


# ----------------------------------------------------------------------------
# the forward pass (float64)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def gemma_rms_norm(x, w, eps):
    """modeling_gemma.py GemmaRMSNorm.forward: _norm(x) * (1.0 + weight)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(cfg, W, tokens, lora):
    """Logits [len(tokens), vocab] (float64) of <Family>ForCausalLM with LoRA terms added."""
    family = cfg.get("model_type", "llama")
    norm = gemma_rms_norm if family == "gemma" else rms_norm
    assert cfg.get("partial_rotary_factor", 1.0) == 1.0
    dim, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    hd = cfg.get("head_dim") or dim // n_heads
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    T = len(tokens)

    def linear(x, path):
        y = x @ W[path + ".weight"].T
        if path + ".bias" in W:
            y = y + W[path + ".bias"]
        for A, B, coef in lora.get(path, []):
            y = y + coef * ((x @ A.T) @ B.T)
        return y

    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((angles, angles), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, hd]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    window = cfg.get("sliding_window") if family in ("mistral", "phi3") else None
    if window is not None:
        # transformers masking_utils.sliding_window_overlay (create_sliding_window_causal_mask
        # of modeling_mistral.py and modeling_phi3.py): key j visible to query i iff j > i - window
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        mask = mask.masked_fill(j <= i - window, float("-inf"))

    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]
    if family == "gemma":  # GemmaModel.forward: normalizer in the hidden dtype (float32 here)
        x = x * float(torch.tensor(dim ** 0.5, dtype=torch.float32))
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        h = norm(x, W[p + "input_layernorm.weight"], eps)
        if family == "phi3":  # Phi3Attention.forward: q | k | v columns of qkv_proj
            qkv = linear(h, p + "self_attn.qkv_proj")
            q, k, v = qkv[:, :n_heads * hd], qkv[:, n_heads * hd:(n_heads + n_kv) * hd], qkv[:, (n_heads + n_kv) * hd:]
        else:
            q, k, v = (linear(h, p + "self_attn." + m) for m in ("q_proj", "k_proj", "v_proj"))
        q = q.reshape(T, n_heads, hd).transpose(0, 1)
        k = k.reshape(T, n_kv, hd).transpose(0, 1)
        v = v.reshape(T, n_kv, hd).transpose(0, 1)
        if cfg.get("model_type") == "qwen3":  # modeling_qwen3.py Qwen3Attention.forward: norm per head, then RoPE
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(n_heads // n_kv, dim=0)  # repeat_kv
        v = v.repeat_interleave(n_heads // n_kv, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, n_heads * hd)
        x = x + linear(o, p + "self_attn.o_proj")
        h = norm(x, W[p + "post_attention_layernorm.weight"], eps)
        if family == "phi3":  # Phi3MLP.forward: gate, up = gate_up_proj(x).chunk(2); up * silu(gate)
            gate, up = linear(h, p + "mlp.gate_up_proj").chunk(2, dim=-1)
            act = up * torch.nn.functional.silu(gate)
        elif family == "gemma":  # GemmaMLP.forward: gelu_pytorch_tanh(gate) * up
            act = torch.nn.functional.gelu(linear(h, p + "mlp.gate_proj"), approximate="tanh") * \
                linear(h, p + "mlp.up_proj")
        else:
            act = torch.nn.functional.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj")
        x = x + linear(act, p + "mlp.down_proj")
    x = norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if tied(cfg) else W["lm_head.weight"]
    return x @ head.T


