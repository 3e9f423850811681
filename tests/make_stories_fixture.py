#!/usr/bin/python3
"""make_stories_fixture.py — expected output of `lorajit generate --text` on the real
stories260K model (tests/models/stories260K, Karpathy's llama2.c model, MIT).

The prompt's ids come from Hugging Face tokenizers itself (the npm package
`tokenizers`, its Rust core, run by node with NODE_PATH pointing at it); the greedy
continuation from tests/make_fixtures.py's independent float64 PyTorch reference (the
whole sequence recomputed at every step); the text of the continuation again from HF
tokenizers' decode. Writes tests/models/stories260K/expected.json; CI reads it and
needs neither node nor torch.
Usage: NODE_PATH=/path/to/node_modules /usr/bin/python3 tests/make_stories_fixture.py
"""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import make_fixtures  # noqa: E402

MODEL = os.path.join(here, "models", "stories260K")
PROMPT = "Once upon a time"
MAX_NEW = 40

NODE = r"""
const { Tokenizer } = require('tokenizers');
(async () => {
  const [path, text, ids] = process.argv.slice(1);
  const t = Tokenizer.fromFile(path);
  if (ids === undefined) {
    const e = await t.encode(text, null, { addSpecialTokens: true });
    console.log(JSON.stringify(e.getIds()));
  } else {
    console.log(JSON.stringify(await t.decode(JSON.parse(ids), true)));
  }
})();
"""


def node(*args):
    out = subprocess.run(["node", "-e", NODE, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    tok = os.path.join(MODEL, "tokenizer.json")
    prompt_ids = node(tok, PROMPT)
    cfg, W = make_fixtures.load_model(MODEL)
    new, margin = make_fixtures.greedy(cfg, W, prompt_ids, {}, MAX_NEW)
    # lorajit runs the BF16 weights in float32: a tie closer than this could flip
    assert margin > 1e-3, f"greedy margin {margin} too small for a float32 comparison"
    eos = 2
    if eos in new:
        new = new[: new.index(eos) + 1]
    text = node(tok, "", json.dumps(prompt_ids + new))
    out = {"prompt": PROMPT, "prompt_ids": prompt_ids, "max_new": MAX_NEW, "greedy_ids": new,
           "min_top2_margin": margin, "text": text}
    with open(os.path.join(MODEL, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
