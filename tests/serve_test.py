#!/usr/bin/env python3
"""serve_test.py BUILD_DIR — `lorajit serve` over plain HTTP (python3-requests).

Starts the server on Karpathy's stories260K (tests/models/stories260K, a real trained
model with its tokenizer, plus a chat template) with two adapters made by lorajit_gen
and an --adapter-dir ROOT, then checks, against `lorajit generate` run with the same
options and seed (an independent path: the CLI calls lorajit_generate directly):
completions (text, ids, echo, stream), chat (stream deltas), logprobs (against the
forward pass; streamed ones equal the whole body's; with echo the prompt's first), stop strings, usage,
/v1/models, load/unload (vLLM semantics) and just-in-time ROOT/NAME, path traversal,
auth, errors (400 naming the field, 401, 404, 405, 413, 429), hostile HTTP (bad JSON,
invalid UTF-8, huge body, absurd max_tokens, unknown fields, a slow client, a client
that leaves mid-stream), /metrics, and 32 concurrent clients over several adapters
while another adapter is loaded and unloaded: every answer equals the same request
run alone; 8 at once share the scheduler's steps (several tokens a step, /metrics). Run from anywhere; exit 0 = pass, 77 = skipped (no python3-requests).
"""
import concurrent.futures as cf
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import requests
except ImportError:
    print("SKIP: python3-requests is not installed (apt-get install python3-requests)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1])
LORAJIT = os.path.join(BUILD, "lorajit")
GEN = os.path.join(BUILD, "lorajit_gen")
KEY = "sk-test-123"
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def start_server(args, env=None, log=None):
    """Starts `lorajit serve --port 0 ARGS`; returns (process, base URL, log path)."""
    log = log or tempfile.mktemp(prefix="serve-", suffix=".log")
    f = open(log, "w")
    p = subprocess.Popen([LORAJIT, "serve", "--port", "0"] + args, stdout=f, stderr=f, env=env)
    url = None
    for _ in range(2400):  # compile + start under a loaded machine: up to 2 minutes
        time.sleep(0.05)
        text = open(log).read()
        m = re.search(r"listening on (http://\S+)", text)
        if m and not url:
            url = m.group(1)
        if url:  # HTTP is up before the model compiles: /health says 503 until it is ready
            r = requests.get(url + "/health", timeout=30)
            STARTS.append((r.status_code, r.json()))
            if r.status_code == 200:
                break
        if p.poll() is not None:
            break
    check(url and p.poll() is None and "ready:" in open(log).read(), "server did not start: " + open(log).read())
    return p, url, log


STARTS = []  # (status, body) of every /health poll while servers start


def stop_server(p):
    p.terminate()
    p.wait(timeout=60)
    check(p.returncode == 0, "server exited %s after SIGTERM" % p.returncode)


def cli_generate(args):
    """`lorajit generate ARGS --print-ids`: (text before the ids line, ids)."""
    out = subprocess.run([LORAJIT, "generate"] + args + ["--print-ids"], capture_output=True, text=True)
    check(out.returncode == 0, "lorajit generate %s: %s" % (args, out.stderr))
    text, _, rest = out.stdout.partition("\nids: ")
    return text, [int(x) for x in rest.split("\n")[0].split(",") if x]


def sse(resp):
    """The JSON events of an SSE response, checking it ends with data: [DONE]."""
    events, done = [], False
    for line in resp.iter_lines(decode_unicode=True):
        if not line:
            continue
        check(line.startswith("data: "), "SSE line without 'data: ': %r" % line)
        if line == "data: [DONE]":
            done = True
            continue
        check(not done, "an event after [DONE]")
        events.append(json.loads(line[6:]))
    check(done, "the stream did not end with data: [DONE]")
    return events


def main():
    tmp = tempfile.mkdtemp(prefix="serve-test-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("serve_test: %d checks passed" % checks)


def make_fixtures(tmp):
    model = os.path.join(tmp, "stories")
    shutil.copytree(os.path.join(ROOT, "tests/models/stories260K"), model)
    with open(os.path.join(model, "chat_template.jinja"), "w") as f:  # BOS + the turns' text
        f.write("{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
                "{% if add_generation_prompt %}{% endif %}")
    root = os.path.join(tmp, "adapters")
    os.makedirs(root)
    for i, (name, targets) in enumerate([("a1", "q_proj,v_proj"), ("a2", "o_proj,down_proj"),
                                         ("a3", "q_proj,k_proj"), ("jit1", "up_proj"), ("churn", "v_proj")]):
        subprocess.run([GEN, "adapter", os.path.join(root, name), "--model", model, "--r", "4", "--targets",
                        targets, "--seed", str(11 + i), "--std", "0.03"], check=True, capture_output=True)
    outside = os.path.join(tmp, "outside")
    subprocess.run([GEN, "adapter", outside, "--model", model, "--r", "4", "--seed", "99"], check=True,
                   capture_output=True)
    os.symlink(outside, os.path.join(root, "escape"))  # a symlink that leaves ROOT
    return model, root, outside


def run(tmp):
    model, root, outside = make_fixtures(tmp)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    server, url, log = start_server(
        ["--model", model, "--max-batch", "8", "--adapter", "a1=" + os.path.join(root, "a1"),
         "--adapter", "a2=" + os.path.join(root, "a2"), "--adapter-dir", root, "--api-key", KEY,
         "--max-body-bytes", "65536", "--idle-timeout", "3", "--max-logprobs", "5"], env=env)
    H = {"Authorization": "Bearer " + KEY}
    post = lambda path, body, **kw: requests.post(url + path, json=body, headers=H, timeout=300, **kw)
    try:
        check_auth_and_models(url, H)
        check_completions(url, post, model, root)
        check_chat(post, model)
        check_logprobs(post, model, root)
        check_stop(post)
        check_lora(url, post, H, root, outside, model)
        check_errors(url, post, H)
        check_hostile(url, post, H, log)
        check_concurrency(url, post)
        check_batching(url, post, H)
        check_metrics(url, H)
    finally:
        stop_server(server)
    check_queue_full(model, env)
    loading = [b for st, b in STARTS if st == 503]
    check(loading and all(b["error"]["code"] == "server_not_ready" for b in loading) and
          all(st in (200, 503) for st, _ in STARTS), "503 while the model compiles: %s" % STARTS[:3])
    lines = [l for l in open(log).read().splitlines() if l.startswith("lorajit serve: request ")]
    check(len(lines) > 100 and all(re.search(r"request \d+ (GET|POST) \S+ \d{3} adapter=\S+ prompt_tokens=\d+ "
                                             r"completion_tokens=\d+ finish=\S+ queue_ms=[\d.]+ ttft_ms=[\d.]+ "
                                             r"total_ms=[\d.]+$", l) for l in lines),
          "one log line per request: %d lines, e.g. %s" % (len(lines), lines[:1]))


def check_auth_and_models(url, H):
    check(requests.get(url + "/health", timeout=30).status_code == 200, "/health needs no key")
    r = requests.get(url + "/v1/models", timeout=30)
    check(r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", "no key: %s" % r.text)
    r = requests.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30)
    check(r.status_code == 401, "wrong key: %d" % r.status_code)
    r = requests.get(url + "/metrics", timeout=30)
    check(r.status_code == 401, "/metrics without key: %d" % r.status_code)
    m = requests.get(url + "/v1/models", headers=H, timeout=30).json()
    ids = [x["id"] for x in m["data"]]
    check(m["object"] == "list" and ids == ["stories", "a1", "a2"], "models: %s" % ids)
    check(m["data"][0]["parent"] is None and all(x["parent"] == "stories" for x in m["data"][1:]),
          "adapters' parent is the base: %s" % m["data"])


SAMPLE = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "seed": 7}
CLI_SAMPLE = ["--temperature", "0.8", "--top-k", "40", "--top-p", "0.95", "--seed", "7"]


def check_completions(url, post, model, root):
    prompt = "Once upon a time"
    for name in ["stories", "a1", "a2"]:
        use = [] if name == "stories" else ["--adapter", "%s=%s/%s" % (name, root, name), "--use", name]
        want_text, want_ids = cli_generate(["--model", model, "--text", prompt, "--max-new", "40"] + use + CLI_SAMPLE)
        r = post("/v1/completions", dict(model=name, prompt=prompt, max_tokens=40, **SAMPLE))
        check(r.status_code == 200, "completion %s: %s" % (name, r.text))
        c = r.json()
        ch = c["choices"][0]
        check(ch["token_ids"] == want_ids, "%s: ids %s, lorajit generate %s" % (name, ch["token_ids"], want_ids))
        check(prompt + ch["text"] == want_text, "%s: text %r, lorajit generate %r" % (name, ch["text"], want_text))
        check(c["object"] == "text_completion" and c["model"] == name and c["id"].startswith("cmpl-"), "body: %s" % c)
        n_prompt = len(subprocess.run([LORAJIT, "tokenize", "--model", model, "--text", prompt], capture_output=True,
                                      text=True).stdout.strip().split(","))
        u = c["usage"]
        check(u == {"prompt_tokens": n_prompt, "completion_tokens": len(want_ids),
                    "total_tokens": n_prompt + len(want_ids)}, "usage: %s" % u)
        check(ch["finish_reason"] == ("stop" if len(want_ids) < 40 else "length"), "finish: %s" % ch["finish_reason"])
        # streamed: the deltas and ids add up to the same
        r = post("/v1/completions", dict(model=name, prompt=prompt, max_tokens=40, stream=True,
                                         stream_options={"include_usage": True}, **SAMPLE), stream=True)
        check(r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream"), "stream status")
        ev = sse(r)
        text = "".join(e["choices"][0]["text"] for e in ev if e["choices"])
        ids = sum((e["choices"][0]["token_ids"] for e in ev if e["choices"]), [])
        check(text == ch["text"] and ids == want_ids, "%s: stream %r %s" % (name, text, ids))
        check(ev[-1]["usage"] == u and ev[-1]["choices"] == [], "stream usage chunk: %s" % ev[-1])
        check([e["choices"][0]["finish_reason"] for e in ev[:-1]].count(None) == len(ev) - 2, "finish only at the end")
    # the same prompt as ids, and echo
    ids = [int(x) for x in subprocess.run([LORAJIT, "tokenize", "--model", model, "--text", prompt],
                                          capture_output=True, text=True).stdout.strip().split(",")]
    a = post("/v1/completions", dict(model="a1", prompt=prompt, max_tokens=12, **SAMPLE)).json()["choices"][0]
    b = post("/v1/completions", dict(model="a1", prompt=ids, max_tokens=12, echo=True, **SAMPLE)).json()["choices"][0]
    check(b["token_ids"] == a["token_ids"] and b["text"] == prompt + a["text"], "ids prompt + echo: %s vs %s" % (b, a))
    # greedy without a seed is the CLI's greedy
    want_text, want_ids = cli_generate(["--model", model, "--text", prompt, "--max-new", "20"])
    g = post("/v1/completions", dict(prompt=prompt, max_tokens=20, temperature=0)).json()
    check(g["choices"][0]["token_ids"] == want_ids and g["model"] == "stories", "greedy: %s" % g)


def check_chat(post, model):
    msgs = [{"role": "user", "content": "Once upon a time"}]
    want_text, want_ids = cli_generate(["--model", model, "--chat", "Once upon a time", "--max-new", "30"] + CLI_SAMPLE)
    r = post("/v1/chat/completions", dict(messages=msgs, max_tokens=30, **SAMPLE))
    check(r.status_code == 200, "chat: %s" % r.text)
    c = r.json()
    ch = c["choices"][0]
    check(c["object"] == "chat.completion" and ch["message"]["role"] == "assistant", "chat body: %s" % c)
    check(ch["token_ids"] == want_ids and ch["message"]["content"] == want_text,
          "chat: %r %s, lorajit generate --chat %r %s" % (ch["message"]["content"], ch["token_ids"], want_text, want_ids))
    # content as a list of text parts is the same message
    parts = [{"role": "user", "content": [{"type": "text", "text": "Once upon"}, {"type": "text", "text": " a time"}]}]
    c2 = post("/v1/chat/completions", dict(messages=parts, max_tokens=30, **SAMPLE)).json()
    check(c2["choices"][0]["token_ids"] == want_ids, "text parts: %s" % c2)
    ev = sse(post("/v1/chat/completions", dict(messages=msgs, max_tokens=30, stream=True, **SAMPLE), stream=True))
    check(ev[0]["choices"][0]["delta"].get("role") == "assistant" and ev[0]["object"] == "chat.completion.chunk",
          "first chat chunk: %s" % ev[0])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in ev)
    check(text == want_text and ev[-1]["choices"][0]["finish_reason"] in ("stop", "length"), "chat stream: %r" % text)


def check_logprobs(post, model, root):
    """logprobs against `lorajit run --logits` (the full forward pass) on the same ids."""
    prompt_ids = [int(x) for x in subprocess.run([LORAJIT, "tokenize", "--model", model, "--text", "Once upon a time"],
                                                 capture_output=True, text=True).stdout.strip().split(",")]
    for name in ["stories", "a1"]:
        c = post("/v1/completions", dict(model=name, prompt="Once upon a time", max_tokens=8, temperature=0,
                                         logprobs=3)).json()["choices"][0]
        lp = c["logprobs"]
        ids = c["token_ids"]
        check(len(lp["tokens"]) == len(ids) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == 8 and
              len(lp["text_offset"]) == 8, "%s logprobs shape: %s" % (name, lp))
        rows = forward_log_softmax(model, root, name, prompt_ids + ids)
        for k, t in enumerate(ids):
            row = rows[len(prompt_ids) - 1 + k]
            want = sorted(row, reverse=True)[:3]
            got = sorted(lp["top_logprobs"][k].values(), reverse=True)
            check(abs(lp["token_logprobs"][k] - row[t]) < 2e-3, "%s token %d: logprob %s, forward %s" %
                  (name, k, lp["token_logprobs"][k], row[t]))
            check(len(got) <= 3 and all(abs(a - b) < 2e-3 for a, b in zip(got, want)) and
                  abs(lp["token_logprobs"][k] - want[0]) < 2e-3, "%s token %d: top %s, forward %s" % (name, k, got, want))
    msgs = [{"role": "user", "content": "Once upon a time"}]
    c = post("/v1/chat/completions", dict(messages=msgs, max_tokens=6, temperature=0, logprobs=True,
                                          top_logprobs=2)).json()["choices"][0]
    content = c["logprobs"]["content"]
    check(len(content) == len(c["token_ids"]) and all(len(x["top_logprobs"]) == 2 and x["logprob"] <= 0 and
                                                      bytes(x["bytes"]).decode() == x["token"] for x in content),
          "chat logprobs: %s" % c["logprobs"])
    check_stream_logprobs(post)
    check_echo_logprobs(post, model, root, prompt_ids)
    for body, param in [(dict(prompt="Once", logprobs=6), "logprobs"), (dict(prompt="Once", logprobs=6, echo=True),
                        "logprobs")]:
        r = post("/v1/completions", body)
        check(r.status_code == 400 and r.json()["error"]["param"] == param, "%s: %s" % (body, r.text))


def forward_log_softmax(model, root, name, ids):
    """`lorajit run --logits` (the full forward pass) on ids under model name (the
    base "stories" or adapter a1): each position's log-softmax row, as a list."""
    import math
    import struct
    out = os.path.join(tempfile.mkdtemp(), "logits")
    use = [] if name == "stories" else ["--adapter", "a1=%s/a1" % root, "--active", "a1"]
    r = subprocess.run([LORAJIT, "run", "--model", model, "--tokens", ",".join(map(str, ids)), "--logits", out] + use,
                       capture_output=True, text=True)
    check(r.returncode == 0, "lorajit run --logits: %s" % r.stderr)
    raw = open(out, "rb").read()
    shutil.rmtree(os.path.dirname(out))
    vocab = len(raw) // 4 // len(ids)
    flat = struct.unpack("<%df" % (len(raw) // 4), raw)
    rows = []
    for p in range(len(ids)):
        row = flat[p * vocab:(p + 1) * vocab]
        m = max(row)
        lse = m + math.log(sum(math.exp(x - m) for x in row))
        rows.append([x - lse for x in row])
    return rows


def check_echo_logprobs(post, model, root, prompt_ids):
    """echo + logprobs (OpenAI's legacy completions, vLLM): the prompt's entries first
    (token_logprobs[0] and top_logprobs[0] null), each against the forward pass; then the
    generated ones, equal to the same request without echo; text_offset runs on over
    both; usage unchanged; the prompt's entries of a request whose prompt is an earlier
    one's prompt + output equal that one's generated entries; streamed (the echoed prompt
    with its entries in the first chunk) joined up equals the whole body."""
    n_p = len(prompt_ids)
    for name in ["stories", "a1"]:
        body = dict(model=name, prompt="Once upon a time", max_tokens=6, temperature=0, logprobs=3)
        plain = post("/v1/completions", body).json()["choices"][0]
        r = post("/v1/completions", dict(body, echo=True)).json()
        c, lp = r["choices"][0], r["choices"][0]["logprobs"]
        ids = c["token_ids"]
        check(ids == plain["token_ids"] and c["text"] == "Once upon a time" + plain["text"] and
              r["usage"]["prompt_tokens"] == n_p and r["usage"]["completion_tokens"] == len(ids),
              "%s echo: text/ids/usage %s vs %s" % (name, r, plain))
        check(all(len(lp[k]) == n_p + len(ids) for k in lp), "%s echo: %d prompt + %d entries: %s" %
              (name, n_p, len(ids), lp))
        check(lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None,
              "%s echo: the first prompt token's logprob and top are null: %s" % (name, lp))
        off = 0
        for k, t in enumerate(lp["tokens"]):
            check(lp["text_offset"][k] == off, "%s echo: text_offset %d = %s, want %d" % (name, k, lp["text_offset"][k], off))
            off += len(t)
        for key in ["tokens", "token_logprobs", "top_logprobs"]:
            check(lp[key][n_p:] == plain["logprobs"][key], "%s echo: generated %s %s, without echo %s" %
                  (name, key, lp[key][n_p:], plain["logprobs"][key]))
        rows = forward_log_softmax(model, root, name, prompt_ids)
        for p in range(1, n_p):
            row, got = rows[p - 1], lp["token_logprobs"][p]
            want = sorted(row, reverse=True)[:3]
            top = sorted(lp["top_logprobs"][p].values(), reverse=True)
            check(abs(got - row[prompt_ids[p]]) < 2e-3 and top[0] >= got and
                  len(top) <= 3 and all(abs(a - b) < 2e-3 for a, b in zip(top, want)),
                  "%s prompt token %d: logprob %s top %s, forward %s top %s" % (name, p, got, top, row[prompt_ids[p]], want))
        # the prompt's entries from the scheduler = the generated ones from the kept sequence
        more = post("/v1/completions", dict(model=name, prompt=prompt_ids + ids[:4], max_tokens=1, temperature=0,
                                            logprobs=3, echo=True)).json()["choices"][0]["logprobs"]
        for key in ["token_logprobs", "top_logprobs", "tokens"]:
            check(more[key][n_p:n_p + 4] == lp[key][n_p:n_p + 4] or key != "tokens" and all(
                  close(a, b) for a, b in zip(more[key][n_p:n_p + 4], lp[key][n_p:n_p + 4])),
                  "%s: prompt entries %s %s, generated ones %s" % (name, key, more[key][n_p:n_p + 4], lp[key][n_p:n_p + 4]))
        ev = sse(post("/v1/completions", dict(body, echo=True, stream=True), stream=True))
        first = ev[0]["choices"][0]
        check(first["text"] == "Once upon a time" and not first["token_ids"] and
              len(first["logprobs"]["tokens"]) == n_p and first["logprobs"]["token_logprobs"][0] is None,
              "%s stream: the first chunk is the echoed prompt with its logprobs: %s" % (name, first))
        got = {k: [] for k in lp}
        for e in ev:
            for k in got:
                got[k] += e["choices"][0]["logprobs"][k] if e["choices"][0]["logprobs"] else []
        check(got == lp, "%s stream: joined logprobs %s, whole %s" % (name, got, lp))


def close(a, b):
    """Equal up to 1e-5: numbers, or {token: logprob} dicts of the same keys."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)
    return a is not None and b is not None and abs(a - b) < 1e-5


def check_stream_logprobs(post):
    """Streamed logprobs (each chunk's choices[0].logprobs for its own tokens) joined up
    equal the non-streamed ones for the same request, token by token and bit for bit
    (greedy, and sampled with a seed), text_offset included; the same for chat."""
    for name in ["stories", "a1"]:
        for sample in [dict(temperature=0), dict(temperature=0.9, seed=7)]:
            body = dict(model=name, prompt="Once upon a time", max_tokens=12, logprobs=3, **sample)
            whole = post("/v1/completions", body).json()["choices"][0]
            ev = sse(post("/v1/completions", dict(body, stream=True), stream=True))
            got = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
            ids = []
            for e in ev:
                c = e["choices"][0]
                ids += c["token_ids"]
                lp = c["logprobs"]
                check((lp is None) == (not c["token_ids"]), "%s: a chunk's logprobs without its ids: %s" % (name, c))
                for key in got:
                    got[key] += lp[key] if lp else []
            check(ids == whole["token_ids"], "%s %s: streamed ids %s, whole %s" % (name, sample, ids, whole["token_ids"]))
            for key in got:
                check(got[key] == whole["logprobs"][key], "%s %s: streamed %s %s, whole %s" %
                      (name, sample, key, got[key], whole["logprobs"][key]))
    msgs = [{"role": "user", "content": "Once upon a time"}]
    body = dict(messages=msgs, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2)
    whole = post("/v1/chat/completions", body).json()["choices"][0]["logprobs"]["content"]
    got = []
    for e in sse(post("/v1/chat/completions", dict(body, stream=True), stream=True)):
        lp = e["choices"][0]["logprobs"]
        got += lp["content"] if lp else []
    check(got == whole, "chat: streamed logprobs %s, whole %s" % (got, whole))


def check_stop(post):
    base = post("/v1/completions", dict(prompt="Once upon a time", max_tokens=60, temperature=0)).json()["choices"][0]
    t = base["text"]
    stop = t[20:24]
    cut = t.index(stop)
    for stream in (False, True):
        body = dict(prompt="Once upon a time", max_tokens=60, temperature=0, stop=["zzzz", stop], stream=stream)
        r = post("/v1/completions", body, stream=stream)
        if stream:
            ev = sse(r)
            text = "".join(e["choices"][0]["text"] for e in ev)
            finish = ev[-1]["choices"][0]["finish_reason"]
        else:
            text, finish = r.json()["choices"][0]["text"], r.json()["choices"][0]["finish_reason"]
        check(text == t[:cut] and finish == "stop", "stop %r (stream %s): %r, want %r" % (stop, stream, text, t[:cut]))


def check_lora(url, post, H, root, outside, model):
    r = post("/v1/load_lora_adapter", {"lora_name": "a3", "lora_path": os.path.join(root, "a3")})
    check(r.status_code == 200, "load a3: %s" % r.text)
    r = post("/v1/load_lora_adapter", {"lora_name": "a3", "lora_path": os.path.join(root, "a3")})
    check(r.status_code == 400 and "already" in r.json()["error"]["message"], "load a3 twice: %s" % r.text)
    ids = [x["id"] for x in requests.get(url + "/v1/models", headers=H, timeout=30).json()["data"]]
    check("a3" in ids, "a3 listed: %s" % ids)
    want_text, want_ids = cli_generate(["--model", model, "--text", "Once upon a time", "--max-new", "16", "--adapter",
                                        "a3=%s/a3" % root, "--use", "a3"] + CLI_SAMPLE)
    c = post("/v1/completions", dict(model="a3", prompt="Once upon a time", max_tokens=16, **SAMPLE)).json()
    check(c["choices"][0]["token_ids"] == want_ids, "a3 after load: %s vs %s" % (c, want_ids))
    check(post("/v1/unload_lora_adapter", {"lora_name": "a3"}).status_code == 200, "unload a3")
    r = post("/v1/completions", dict(model="a3", prompt="Once", max_tokens=2))
    # a3 is under ROOT, so naming it loads it again just in time
    check(r.status_code == 200, "a3 again (just in time from ROOT): %s" % r.text)
    check(post("/v1/unload_lora_adapter", {"lora_name": "a3"}).status_code == 200, "unload a3 again")
    r = post("/v1/unload_lora_adapter", {"lora_name": "a3"})
    check(r.status_code == 404, "unload of an unloaded adapter: %d %s" % (r.status_code, r.text))
    # just in time: jit1 is ROOT/jit1
    want_text, want_ids = cli_generate(["--model", model, "--text", "Once upon a time", "--max-new", "16", "--adapter",
                                        "jit1=%s/jit1" % root, "--use", "jit1"] + CLI_SAMPLE)
    c = post("/v1/completions", dict(model="jit1", prompt="Once upon a time", max_tokens=16, **SAMPLE)).json()
    check(c["choices"][0]["token_ids"] == want_ids, "jit1 just in time: %s vs %s" % (c, want_ids))
    ids = [x["id"] for x in requests.get(url + "/v1/models", headers=H, timeout=30).json()["data"]]
    check("jit1" in ids, "jit1 listed after its just-in-time load: %s" % ids)
    # paths that leave ROOT, and bad names
    for name, path in [("t1", "../outside"), ("t2", root + "/../outside"), ("t3", outside), ("t4", "escape"),
                       ("t5", os.path.join(root, "escape")), ("t6", "/etc"), ("t7", os.path.join(root, "nosuch"))]:
        r = post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        check(r.status_code == 400 and r.json()["error"]["param"] == "lora_path", "lora_path %s: %s" % (path, r.text))
    r = post("/v1/completions", dict(model="escape", prompt="Once", max_tokens=2))
    check(r.status_code in (400, 404), "model 'escape' (a symlink out of ROOT): %s" % r.text)
    for bad in ["../a1", ".hidden", "a/b", "", "x" * 200]:
        r = post("/v1/load_lora_adapter", {"lora_name": bad, "lora_path": os.path.join(root, "a1")})
        check(r.status_code == 400 and r.json()["error"]["param"] == "lora_name", "lora_name %r: %s" % (bad, r.text))
    r = post("/v1/load_lora_adapter", {"lora_name": "notadapter", "lora_path": root})  # ROOT itself: no adapter files
    check(r.status_code == 400 and "notadapter" not in [x["id"] for x in requests.get(
        url + "/v1/models", headers=H, timeout=30).json()["data"]], "a folder that is not an adapter: %s" % r.text)


def check_errors(url, post, H):
    cases = [({"prompt": "Once", "max_tokens": -1}, 400, "max_tokens"),
             ({"prompt": "Once", "max_tokens": 10 ** 9}, 400, "max_tokens"),
             ({"prompt": "Once", "max_tokens": 1.5}, 400, "max_tokens"),
             ({"prompt": "Once", "temperature": "hot"}, 400, "temperature"),
             ({"prompt": "Once", "n": 2}, 400, "n"),
             ({"prompt": "Once", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
             ({"prompt": ["a", "b"]}, 400, "prompt"),
             ({"prompt": [1, -2]}, 400, "prompt"),
             ({}, 400, "prompt"),
             ({"prompt": "Once", "model": "nosuch"}, 404, "model"),
             ({"prompt": "Once", "model": 5}, 400, "model"),
             ({"prompt": "Once", "top_p": 0}, 400, "top_p")]
    for body, status, param in cases:
        r = post("/v1/completions", body)
        e = r.json().get("error", {})
        check(r.status_code == status and e.get("param") == param and e.get("message"), "%s: %d %s" % (body, r.status_code, r.text))
    r = post("/v1/completions", {"prompt": "Once", "model": "nosuch"})
    check(r.json()["error"]["code"] == "model_not_found", "404 code: %s" % r.text)
    r = post("/v1/completions", {"prompt": [5] * 300, "max_tokens": 100000})  # fits the parser, not the KV cache
    check(r.status_code == 400 and "max_seq_len" in r.json()["error"]["message"], "absurd max_tokens: %s" % r.text)
    r = post("/v1/completions", {"prompt": "Once", "max_tokens": 3, "temperature": 0, "frobnicate": {"x": [1]},
                                  "user": "u", "logit_bias": {}})
    check(r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3, "unknown fields ignored: %s" % r.text)
    r = post("/v1/chat/completions", {"messages": "hi"})
    check(r.status_code == 400 and r.json()["error"]["param"] == "messages", "messages: %s" % r.text)
    r = requests.get(url + "/v1/completions", headers=H, timeout=30)
    check(r.status_code == 405, "GET /v1/completions: %d" % r.status_code)
    r = requests.get(url + "/v2/nothing", headers=H, timeout=30)
    check(r.status_code == 404, "unknown path: %d" % r.status_code)


def check_hostile(url, post, H, log):
    raw = lambda data: requests.post(url + "/v1/completions", data=data, timeout=60,
                                     headers=dict(H, **{"Content-Type": "application/json"}))
    for data in [b"{", b"[]", b"null", b'{"prompt": "a"', b"\x00\x01\x02", b"", b'{"prompt": "\xff\xfe"}',
                 b'{"prompt": "\xed\xa0\x80"}', b'{"prompt": "\xc0\xaf"}']:
        r = raw(data)
        check(r.status_code == 400 and "error" in r.json(), "body %r: %d %s" % (data, r.status_code, r.text))
    r = raw(b'{"prompt": "' + b"a" * 70000 + b'"}')
    check(r.status_code == 413 and r.json()["error"]["code"] == "request_too_large", "huge body: %d" % r.status_code)

    def chunks():  # a chunked body (no Content-Length) past the cap
        for _ in range(100):
            yield b"a" * 1000
    r = requests.post(url + "/v1/completions", data=chunks(), headers=H, timeout=60)
    check(r.status_code == 413, "huge chunked body: %d" % r.status_code)
    # a slow client: half a request line, then nothing; others are served; it is closed after the idle timeout
    host, port = url[len("http://"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
    t0 = time.time()
    r = post("/v1/completions", {"prompt": "Once", "max_tokens": 2})
    check(r.status_code == 200, "a request while a slow client holds a connection: %d" % r.status_code)
    s.settimeout(30)
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    check(got == b"" and time.time() - t0 < 20, "slow client not closed after the idle timeout: %r" % got)
    s.close()
    # a client that leaves mid-stream: its request is cancelled at the next token
    before = metric(url, H, 'vllm:request_success_total{finished_reason="abort"')
    r = post("/v1/completions", {"prompt": "Once", "max_tokens": 400, "temperature": 0, "stream": True}, stream=True)
    next(r.iter_lines())
    r.close()
    for _ in range(100):
        time.sleep(0.1)
        if metric(url, H, 'vllm:request_success_total{finished_reason="abort"') > before:
            break
    check(metric(url, H, 'vllm:request_success_total{finished_reason="abort"') == before + 1, "abort not counted")
    line = [l for l in open(log).read().splitlines() if "finish=abort" in l]
    check(line and int(re.search(r"completion_tokens=(\d+)", line[-1]).group(1)) < 400, "cancelled: %s" % line)


def metric(url, H, prefix):
    text = requests.get(url + "/metrics", headers=H, timeout=30).text
    for l in text.splitlines():
        if l.startswith(prefix):
            return float(l.rsplit(" ", 1)[1])
    check(False, "metric %s missing" % prefix)


def check_concurrency(url, post):
    names = ["stories", "a1", "a2", "jit1"]
    reqs = [dict(model=names[i % 4], prompt="Once upon a time" if i % 3 else "The little dog", max_tokens=12 + i % 5,
                 seed=100 + i, temperature=0.9, top_k=20) for i in range(32)]
    alone = [post("/v1/completions", r).json()["choices"][0] for r in reqs]
    stop = threading.Event()
    churn_status = []

    def churn():  # another adapter loaded and unloaded all the while
        while not stop.is_set():
            churn_status.append(post("/v1/load_lora_adapter", {"lora_name": "churn", "lora_path": "churn"}).status_code)
            churn_status.append(post("/v1/completions", dict(model="churn", prompt="Once", max_tokens=3)).status_code)
            churn_status.append(post("/v1/unload_lora_adapter", {"lora_name": "churn"}).status_code)
    t = threading.Thread(target=churn)
    t.start()
    try:
        with cf.ThreadPoolExecutor(32) as ex:
            for rnd in range(2):
                got = list(ex.map(lambda r: post("/v1/completions", r).json()["choices"][0], reqs))
                for i, (g, a) in enumerate(zip(got, alone)):
                    check(g["token_ids"] == a["token_ids"] and g["text"] == a["text"],
                          "concurrent request %d (%s) differs from alone" % (i, reqs[i]["model"]))
    finally:
        stop.set()
        t.join()
    check(churn_status and set(churn_status) == {200}, "load/completion/unload while serving: %s" % set(churn_status))


def check_batching(url, post, H):
    """Concurrent requests share the scheduler's steps: 8 at once each give the ids they give alone (same seed), and
    their steps sampled several tokens each (lorajit:scheduler_step_tokens_total over _steps_total), where the same 8
    one after the other sample exactly one token a step."""
    reqs = [dict(prompt="Once upon a time" if i % 2 else "The little dog", max_tokens=160, seed=300 + i,
                 temperature=0.8, top_k=40) for i in range(8)]
    counters = lambda: (metric(url, H, "lorajit:scheduler_steps_total"), metric(url, H, "lorajit:scheduler_step_tokens_total"))
    steps0, toks0 = counters()
    t0 = time.time()
    alone = [post("/v1/completions", r).json()["choices"][0]["token_ids"] for r in reqs]
    t_seq = time.time() - t0
    steps1, toks1 = counters()
    check(toks1 - toks0 == sum(map(len, alone)) and steps1 - steps0 == toks1 - toks0,
          "one request at a time: %d tokens in %d steps, want %d in as many" % (toks1 - toks0, steps1 - steps0,
                                                                                 sum(map(len, alone))))
    gate = threading.Barrier(8)

    def together(r):
        gate.wait()
        return post("/v1/completions", r).json()["choices"][0]["token_ids"]
    t0 = time.time()
    with cf.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(together, reqs))
    t_conc = time.time() - t0
    steps2, toks2 = counters()
    for i, (g, a) in enumerate(zip(got, alone)):
        check(g == a, "batched request %d differs from alone: %s vs %s" % (i, g[:8], a[:8]))
    per_step = (toks2 - toks1) / max(steps2 - steps1, 1)
    check(toks2 - toks1 == sum(map(len, got)) and per_step >= 2.0,
          "8 concurrent requests: %d tokens in %d steps (%.2f a step), want 2 or more a step" %
          (toks2 - toks1, steps2 - steps1, per_step))
    print("batching: 8 requests, %d tokens: one at a time %.3f s (%d steps), together %.3f s (%d steps, %.2f tokens a "
          "step)" % (sum(map(len, got)), t_seq, steps1 - steps0, t_conc, steps2 - steps1, per_step))


def check_metrics(url, H):
    text = requests.get(url + "/metrics", headers=H, timeout=30).text
    for name in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc",
                 "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds_bucket",
                 "vllm:time_per_output_token_seconds_bucket", "vllm:e2e_request_latency_seconds_count"]:
        check(re.search(r"^%s\{" % re.escape(name), text, re.M), "metric %s missing" % name)
    check(re.search(r'^vllm:lora_requests_info\{max_lora="8",running_lora_adapters="",waiting_lora_adapters=""\} ',
                    text, re.M), "lora_requests_info: %s" % [l for l in text.splitlines() if "lora_requests_info" in l])
    check(metric(url, H, "vllm:num_requests_running") == 0 and metric(url, H, "vllm:generation_tokens_total") > 500,
          "gauges and counters")
    usage = metric(url, H, "vllm:gpu_cache_usage_perc")
    check(0 <= usage <= 1, "KV usage out of 0..1: %s" % usage)


def check_queue_full(model, env):
    """One sequence, no queue: a second request while one runs gets 429."""
    server, url, _ = start_server(["--model", model, "--max-batch", "1", "--max-waiting", "0"], env=env)
    try:
        r = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 400, "temperature": 0,
                                                          "stream": True}, stream=True, timeout=60)
        lines = r.iter_lines()  # kept: a dropped generator closes the connection (the request would be cancelled)
        next(lines)  # running now
        q = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 2}, timeout=60)
        check(q.status_code == 429 and q.json()["error"]["code"] == "queue_full", "queue full: %d %s" % (q.status_code, q.text))
        usage = metric(url, {}, "vllm:gpu_cache_usage_perc")
        check(0 < usage <= 1, "KV usage while a request holds its blocks: %s" % usage)
        r.close()
        del lines
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
