#!/usr/bin/env python3
"""make_corpus.py — writes the seed corpora of tests/fuzz/corpus/<harness>/ from the
test fixtures (run from anywhere; rerun after the fixtures change).

config / peft_config / shard_index: copies of the fixture JSON files, plus a few
hand-written variants that reach other branches. safetensors: small valid files
rebuilt from real fixture headers (first tensors kept, shapes shrunk, every dtype),
edge cases (empty header, metadata, zero-size tensors) and the first 4 KiB of real
files. schema: schema JSON and --targets lists. script: CLI scripts. template: chat templates. (manifest/
holds manifest.json files of artifacts made by lorajit_compile_artifact; kept as is.)"""
import glob, json, os, struct, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st_file(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> safetensors bytes."""
    header, off, blob = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


SIZE = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def main():
    for h in ("config", "peft_config", "shard_index", "schema", "script", "safetensors"):
        shutil.rmtree(os.path.join(OUT, h), ignore_errors=True)
    rel = lambda p: os.path.relpath(p, TESTS).replace("/", "_")
    # config.json
    for p in sorted(glob.glob(f"{TESTS}/conformance/models/*/config.json") + glob.glob(f"{TESTS}/golden/models/*/config.json")):
        put("config", rel(p), open(p, "rb").read())
    for p in sorted(glob.glob(f"{TESTS}/configs/real/*.json")):  # published checkpoints' configs
        put("config", "real_" + os.path.basename(p), open(p, "rb").read())
    base = json.load(open(f"{TESTS}/conformance/models/llama-tiny/config.json"))
    for i, extra in enumerate([{"num_key_value_heads": 2, "head_dim": 16}, {"rope_scaling": None, "hidden_act": "silu"},
                               {"model_type": "mistral"}, {"tie_word_embeddings": True, "attention_bias": True}]):
        put("config", f"variant_{i}.json", json.dumps({**base, **extra}))
    # adapter_config.json
    for p in sorted(glob.glob(f"{TESTS}/conformance/adapters/*/*/adapter_config.json") + glob.glob(f"{TESTS}/golden/adapters/*/*/adapter_config.json")):
        put("peft_config", rel(p), open(p, "rb").read())
    put("peft_config", "minimal.json", '{"peft_type":"LORA","r":4,"lora_alpha":8}')
    put("peft_config", "patterns.json", '{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":"model\\\\.layers\\\\.[01]\\\\..*(q|v)_proj",'
        '"rank_pattern":{"q_proj":2},"alpha_pattern":{"layers.1.self_attn.v_proj":3.5},"exclude_modules":["k_proj"],'
        '"use_rslora":true,"layers_to_transform":null,"bias":"none","modules_to_save":null}')
    put("peft_config", "layers.json", '{"peft_type":"LORA","r":2,"lora_alpha":2,"target_modules":["q_proj","mlp.down_proj"],'
        '"layers_to_transform":[0,1],"layers_pattern":["layers"],"use_dora":false,"fan_in_fan_out":false}')
    # model.safetensors.index.json
    for p in sorted(glob.glob(f"{TESTS}/golden/models/*/model.safetensors.index.json")):
        put("shard_index", rel(p), open(p, "rb").read())
    put("shard_index", "small.json", '{"metadata":{"total_size":8},"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors","c":"m-1.safetensors"}}')
    # adapter schema + --targets lists
    for i, s in enumerate(['{"max_rank": 16, "target_modules": ["q_proj", "v_proj"], "max_adapters": 8}',
                           '{"max_rank": 64, "target_modules": "all-linear", "max_tokens": 32}',
                           '{"target_modules": "none", "max_adapters": 1}', "q_proj,v_proj", " gate_proj , up_proj,down_proj",
                           "none", "all-linear,k_proj"]):
        put("schema", f"schema_{i}", s)
    # scripts
    a = "conformance/adapters/llama-tiny"
    put("script", "cli.txt", f"# a comment, then a blank line\n\nload qv {a}/a_qv\nload all {a}/a_all\nset qv:1,all:0.5\n"
        f"forward 175,196,25,246,67,211,151 /tmp/s.bin\nset nosuch\nhotswap qv {a}/a_mlp\nset qv\ndisable\nenable\n"
        "delete all\nstats\nset\n")
    put("script", "errors.txt", "load x\nset a b c\nforward 1,2,x f\nenable now\nbogus\r\nset a:0.5,b:-1e3,c:inf\n\tload n dir with spaces \n")
    put("script", "tokens.txt", "1,2,3,-4,2147483647\n")
    # safetensors: shrunk copies of real headers
    files = sorted(glob.glob(f"{TESTS}/conformance/adapters/*/*/*.safetensors") + glob.glob(f"{TESTS}/golden/adapters/*/*/*.safetensors")
                   + glob.glob(f"{TESTS}/golden/models/*/*.safetensors"))
    for p in files:
        raw = open(p, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        kept = []
        for name, e in list(header.items()):
            if name == "__metadata__" or len(kept) == 3:
                continue
            shape = [min(d, 3) for d in e["shape"]]
            nbytes = count(shape) * SIZE[e["dtype"]]
            b, _ = e["data_offsets"]
            kept.append((name, e["dtype"], shape, raw[8 + n + b: 8 + n + b + nbytes]))
        put("safetensors", "shrunk_" + rel(p), st_file(kept, header.get("__metadata__")))
    for p in files[:3]:
        put("safetensors", "head4k_" + rel(p), open(p, "rb").read()[:4096])
    put("safetensors", "empty_header", st_file([]))
    put("safetensors", "metadata", st_file([("w", "F32", [2], struct.pack("<2f", 1.5, -2))], {"format": "pt"}))
    put("safetensors", "dtypes", st_file([(f"t_{d}", d, [2, 1], bytes(range(2 * SIZE[d]))) for d in SIZE]))
    put("safetensors", "zero_size", st_file([("a", "F32", [0, 4], b""), ("b", "F16", [], b"\x00\x3c"), ("c", "BF16", [1, 1, 1], b"\x80\x3f")]))
    put("safetensors", "unaligned", struct.pack("<Q", 3 + 77) + b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}' + b" " * 25 + b"\x00" * 9)


def hostile_json():
    """Issue 11: keys given twice (Python's json keeps the last, lorajit refuses), a \\u0000
    escape, and alphas that overflow or make no sense in f32."""
    put("peft_config", "hostile_alpha_1e39.json", '{"peft_type":"LORA","r":4,"lora_alpha":1e39}')
    put("peft_config", "hostile_alpha_pattern_huge.json", '{"peft_type":"LORA","r":4,"lora_alpha":8,'
        '"alpha_pattern":{"q_proj":-3e30,"v_proj":16777216}}')
    put("peft_config", "hostile_dup_alpha.json", '{"peft_type":"LORA","r":4,"lora_alpha":16,"lora_alpha":64}')
    put("peft_config", "hostile_dup_rank_pattern.json", '{"peft_type":"LORA","r":4,"lora_alpha":16,'
        '"rank_pattern":{"q_proj":2,"q_proj":8},"layers_to_transform":[0,{"a":1,"a":2}]}')
    put("peft_config", "hostile_nul_key.json", '{"peft_type":"LORA","r":4,"lora_alpha\\u0000x":64,"lora_alpha":16,'
        '"bias":"none\\\\u0000"}')
    base = open(f"{TESTS}/conformance/models/llama-tiny/config.json").read().rstrip().rstrip("}")
    put("config", "hostile_dup_layers.json", base + ',\n  "num_hidden_layers": 4096\n}')
    put("schema", "hostile_dup", '{"max_rank": 16, "max_rank": 1024, "target_modules": ["q_proj"]}')
    put("shard_index", "hostile_dup.json", '{"weight_map":{"a":"m-1.safetensors","a":"m-2.safetensors"},'
        '"metadata":{},"metadata":{"total_size":8}}')
    qv = open(f"{OUT}/manifest/tiny_qv.json").read()
    put("manifest", "hostile_dup_format.json", '{"format":"lorajit-artifact-0",' + qv.lstrip()[1:])
    put("safetensors", "hostile_dup_tensor", struct.pack("<Q", 96) + (b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        b'"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}').ljust(96) + bytes(8))


def template_corpus():
    """template: the real chat templates (tests/chat/templates) and the inline feature
    templates of tests/chat/cases.json, plus a few hostile ones."""
    shutil.rmtree(os.path.join(OUT, "template"), ignore_errors=True)
    for p in sorted(glob.glob(f"{TESTS}/chat/templates/*.jinja")):
        put("template", os.path.basename(p), open(p, "rb").read())
    seen = set()
    for c in json.load(open(f"{TESTS}/chat/cases.json", encoding="utf-8")):
        if "inline" in c and c["inline"] not in seen:
            seen.add(c["inline"])
            put("template", c["name"] + ".jinja", c["inline"].encode())
    put("template", "hostile_recursion.jinja", "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")
    put("template", "hostile_loops.jinja", "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}")
    put("template", "hostile_doubling.jinja", "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["template"]:  # `make_corpus.py template` rewrites only corpus/template
        main()
        hostile_json()
    template_corpus()
