// bench_hf.js — Hugging Face tokenizers (npm, Rust core) encode throughput on a file,
// for comparison with lorajit's (tests/tokenizer/README.md):
//   NODE_PATH=/work/tools/node_modules node tests/tokenizer/bench_hf.js TOKENIZER.json TEXT
// One encode call of the whole text, no special tokens, best of 3 (RAYON_NUM_THREADS=1
// keeps the Rust side single-threaded).
const { Tokenizer } = require('tokenizers');
const fs = require('fs');
(async () => {
  const t0 = process.hrtime.bigint();
  const t = Tokenizer.fromFile(process.argv[2]);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  t.disableTruncation();
  const text = fs.readFileSync(process.argv[3], 'utf8');
  const bytes = Buffer.byteLength(text);
  let best = Infinity, n = 0;
  for (let r = 0; r < 3; r++) {
    const a = process.hrtime.bigint();
    const enc = await t.encode(text, null, { addSpecialTokens: false });
    n = enc.getIds().length;
    best = Math.min(best, Number(process.hrtime.bigint() - a) / 1e6);
  }
  console.log(`hf: load ${loadMs.toFixed(1)} ms; ${bytes} bytes -> ${n} ids in ${best.toFixed(1)} ms = ${(bytes / 1e6 / (best / 1e3)).toFixed(2)} MB/s`);
})();
