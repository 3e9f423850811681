// bench_hf.js — Hugging Face tokenizers (npm, Rust core) load time and encode throughput
// on a file, for comparison with lorajit's (tests/tokenizer/README.md, `lorajit bench`):
//   NODE_PATH=/work/tools/node_modules node tests/tokenizer/bench_hf.js TOKENIZER.json TEXT
//       [--loads N] [--reps N] [--json]
// Load: Tokenizer.fromFile, one untimed warm-up then N timed (default 1, no warm-up).
// Encode: one call on the whole text, no special tokens, one untimed warm-up then N timed
// (default 3). RAYON_NUM_THREADS=1 keeps the Rust side single-threaded. --json prints one
// line: {"available", "version", "load_ms", "encode_ms" (median, min, max, reps), "bytes",
// "ids", "ids_fnv" (FNV-1a 32 over the ids)}; without the package: {"available": false,
// "reason"} (exit 0). Without --json, one line of text (best times).
const fs = require('fs');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const json = args.includes('--json');
let tokenizers, version = '?';
try {
  tokenizers = require('tokenizers');
  version = require('tokenizers/package.json').version;
} catch (e) {
  const reason = 'the npm package tokenizers is not found (NODE_PATH: ' + (process.env.NODE_PATH || 'unset') + ')';
  if (json) { console.log(JSON.stringify({ available: false, reason })); process.exit(0); }
  console.error(reason);
  process.exit(1);
}
const ms = (a) => Number(process.hrtime.bigint() - a) / 1e6;
const stat = (v) => {
  const s = [...v].sort((x, y) => x - y), n = s.length;
  return { median: n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, min: s[0], max: s[n - 1], reps: n };
};
(async () => {
  const loads = opt('--loads', 1), reps = opt('--reps', 3);
  const load = [];
  let t;
  for (let r = json && loads > 1 ? -1 : 0; r < loads; r++) {
    const a = process.hrtime.bigint();
    t = tokenizers.Tokenizer.fromFile(args[0]);
    if (r >= 0) load.push(ms(a));
  }
  t.disableTruncation();
  const text = fs.readFileSync(args[1], 'utf8');
  const bytes = Buffer.byteLength(text);
  const enc = [];
  let ids = [];
  for (let r = json ? -1 : 0; r < reps; r++) {
    const a = process.hrtime.bigint();
    const e = await t.encode(text, null, { addSpecialTokens: false });
    ids = e.getIds();
    if (r >= 0) enc.push(ms(a));
  }
  let h = 0x811c9dc5;
  for (const id of ids) h = Math.imul(h ^ id, 16777619) >>> 0;
  if (json) {
    console.log(JSON.stringify({ available: true, version, load_ms: stat(load), encode_ms: stat(enc), bytes,
                                 ids: ids.length, ids_fnv: h }));
  } else {
    const best = Math.min(...enc);
    console.log(`hf: load ${Math.min(...load).toFixed(1)} ms; ${bytes} bytes -> ${ids.length} ids in ` +
                `${best.toFixed(1)} ms = ${(bytes / 1e6 / (best / 1e3)).toFixed(2)} MB/s`);
  }
})();
