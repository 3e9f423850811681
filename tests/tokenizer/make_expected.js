// make_expected.js — reference ids and decodes from Hugging Face tokenizers (the
// npm package `tokenizers`, its Rust core) for tests/test_tok_exact.c.
//   NODE_PATH=/work/tools/node_modules node tests/tokenizer/make_expected.js
// Writes tests/tokenizer/expected/NAME.json.xz: {"cases": [{"text", "ids",
// "ids_special", "decode", "decode_skip"}]} for each tokenizer below, on the edge
// cases here plus random chunks of text found on a Debian system (licences,
// Python sources, locale files). Truncation and padding are disabled, as
// transformers does unless asked. Deterministic (fixed seed, sorted file lists).
const { Tokenizer } = require('tokenizers');
const fs = require('fs'), path = require('path'), cp = require('child_process');
const here = __dirname;
const NAMES = ['tinyllama', 'qwen3', 'stories260K', 'metaspace', 'gpt2bl', 'msalways'];
const CHUNKS = +(process.env.CHUNKS || 1000);

const edge = [
  '', ' ', '  ', '   x', 'x   ', '\t', '\n', '\r\n', 'a\r\nb\n\nc\t\td', ' leading', '  two leading',
  'trailing ', 'Hello world', 'Hello  world', '中文字符测试', '日本語のテキスト', '한국어', '👩‍👩‍👧‍👦 family',
  '🏳️‍🌈', 'e\u0301 vs \u00e9', 'Cafe\u0301', '\u00a0nbsp\u00a0here', '\ufeffBOM start', 'ctrl\u0001\u0002\u007f\u0085x',
  'mongolian\u180esep', 'fs\u001c\u001dgs', 'def f(x):\n    return x * 2  # comment\n', 'int main() { return 0; }',
  '12345678901234567890', '3.14159 and 1,000,000', "I'm you're he'll they'd we've it's", "I'M YOU'RE HE'LL IT'S",
  "'s 'S 'T", '<s>', '</s>', '<unk>', '<s> hi </s>', 'a<s>b', '<|im_start|>user\nhi<|im_end|>', '<|endoftext|>',
  ' <|endoftext|> ', '<|sep|>', 'x <|sep|>  y', 'x<|sep|>y', 'hello world', 'ahello hello! <|x|>  z', 'ＨＥＬＬＯ ｈｅｌｌｏ', '<think>\n\n</think>', '\u2581already', '▁▁',
  '\ud800'.length ? 'ok' : '', 'Ω≈ç√∫˜µ≤≥÷', 'ÅÍÎÏ˝ÓÔ\uF8FFÒÚÆ☃', '٠١٢٣٤٥٦٧٨٩', 'עברית', 'العربية',
  'Zalgo: Z̮̞̠͙͔ͅḀ̗̞͈̻̗Ḷ͙͎̯̹̞͓G̻O̭̗̮', 'tab\tand space \t mixed', '    \n    \n', 'a\u3000b', '\u2028\u2029',
  'x'.repeat(300), ' '.repeat(100) + 'end', 'ab'.repeat(200), 'http://example.com/path?q=1&r=2#frag',
  'email@example.com', '$$$ %%% ^^^', '...!!!???', '¡¿', 'naïve café résumé', 'ﬁ ligature', 'Ⅻ roman', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
];

function rng(seed) { let s = seed >>> 0; return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296); }
function files() {
  const out = [];
  const add = (d, re) => { try { for (const f of fs.readdirSync(d).sort()) if (re.test(f)) out.push(path.join(d, f)); } catch (e) {} };
  add('/usr/share/common-licenses', /./);
  add('/usr/lib/python3.11', /\.py$/);
  add('/usr/share/i18n/locales', /^(ja_JP|zh_CN|ru_RU|ar_SA|de_DE|fr_FR|ko_KR|el_GR|he_IL|hi_IN|th_TH|uk_UA)$/);
  return out.filter(f => { try { return fs.statSync(f).isFile(); } catch (e) { return false; } });
}
function chunks() {
  const r = rng(12345), fl = files(), out = [];
  const texts = fl.map(f => fs.readFileSync(f).toString('utf8')).filter(t => t.length > 100 && !t.includes('\ufffd'));
  for (let i = 0; i < CHUNKS; i++) {
    const t = texts[Math.floor(r() * texts.length)];
    const len = 1 + Math.floor(r() * 400), off = Math.floor(r() * Math.max(1, t.length - len));
    let c = Array.from(t.slice(off, off + len + 2)).slice(0, len).join(''); // whole code points
    out.push(c.replace(/[\ud800-\udfff]/g, ''));
  }
  // non-English: decode the <UXXXX> escapes of locale files into real text
  return out.map(s => s.replace(/<U([0-9A-F]{4,5})>/g, (m, h) => String.fromCodePoint(parseInt(h, 16))));
}

function load(name) {
  const d = path.join(here, name);
  let f = path.join(d, 'tokenizer.json');
  if (!fs.existsSync(f)) {
    f = path.join(require('os').tmpdir(), `tok_${name}.json`);
    fs.writeFileSync(f, cp.execSync(`xz -dc ${path.join(d, 'tokenizer.json.xz')}`, { maxBuffer: 1 << 28 }));
  }
  const t = Tokenizer.fromFile(f);
  t.disableTruncation();
  t.disablePadding();
  return t;
}

(async () => {
  fs.mkdirSync(path.join(here, 'expected'), { recursive: true });
  const texts = edge.concat(chunks());
  for (const name of NAMES) {
    const t = load(name), cases = [];
    for (const text of texts) {
      const ids = (await t.encode(text, null, { addSpecialTokens: false })).getIds();
      const ids_special = (await t.encode(text, null, { addSpecialTokens: true })).getIds();
      cases.push({ text, ids, ids_special, decode: await t.decode(ids_special, false), decode_skip: await t.decode(ids_special, true) });
    }
    const out = path.join(here, 'expected', name + '.json');
    fs.writeFileSync(out, JSON.stringify({ tokenizer: name, cases }));
    cp.execSync(`xz -9 -f ${out}`);
    console.log(name, cases.length, 'cases');
  }
})();
