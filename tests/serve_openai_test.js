// serve_openai_test.js BUILD_DIR — the official OpenAI Node client (npm `openai`) against
// `lorajit serve`: completions and chat (plain and streamed) equal to `lorajit generate`
// with the same options and seed, model listing, vLLM's load/unload through the client's
// raw post, and the client's typed errors (404 NotFoundError, 401 AuthenticationError,
// 400 BadRequestError). Model: stories260K (tests/models) with a chat template and an
// adapter made by lorajit_gen. Exit 0 = pass, 77 = skipped (no node `openai` package:
// install it with `npm install --prefix BUILD_DIR/node openai@4`; found through NODE_PATH).
'use strict';
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

let OpenAI;
try {
  OpenAI = require('openai');
} catch (e) {
  console.log('SKIP: the npm package openai is not found (NODE_PATH: ' + (process.env.NODE_PATH || 'unset') +
              '); npm install --prefix BUILD_DIR/node openai@4');
  process.exit(77);
}

const root = path.resolve(__dirname, '..');
const build = path.resolve(process.argv[2]);
const lorajit = path.join(build, 'lorajit');
const KEY = 'sk-node-test';
let checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) {
    console.log('FAIL: ' + what);
    process.exit(1);
  }
}

function cliGenerate(args) { // `lorajit generate ARGS --print-ids`: [text, ids]
  const out = execFileSync(lorajit, ['generate', ...args, '--print-ids'], { encoding: 'utf8' });
  const at = out.indexOf('\nids: ');
  return [out.slice(0, at), out.slice(at + 6).split('\n')[0].split(',').map(Number)];
}

async function startServer(args, log) {
  const fd = fs.openSync(log, 'w');
  const p = spawn(lorajit, ['serve', '--port', '0', ...args], { stdio: ['ignore', fd, fd],
    env: Object.assign({}, process.env, { OPENBLAS_NUM_THREADS: '1' }) });
  for (let i = 0; i < 1200; i++) {
    await new Promise(r => setTimeout(r, 100));
    const text = fs.readFileSync(log, 'utf8');
    const m = text.match(/listening on (http:\/\/\S+)/);
    if (m && text.includes('ready:')) return [p, m[1]];
    if (p.exitCode !== null) break;
  }
  check(false, 'server did not start: ' + fs.readFileSync(log, 'utf8'));
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-openai-'));
  const model = path.join(tmp, 'stories');
  fs.mkdirSync(model);
  for (const f of fs.readdirSync(path.join(root, 'tests/models/stories260K')))
    fs.copyFileSync(path.join(root, 'tests/models/stories260K', f), path.join(model, f));
  fs.writeFileSync(path.join(model, 'chat_template.jinja'),
                   "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
  const a1 = path.join(tmp, 'a1');
  execFileSync(path.join(build, 'lorajit_gen'), ['adapter', a1, '--model', model, '--r', '4', '--targets',
                                                 'q_proj,v_proj', '--seed', '5', '--std', '0.03']);
  const [server, url] = await startServer(['--model', model, '--adapter', 'a1=' + a1, '--api-key', KEY,
                                           '--max-batch', '4', '--max-logprobs', '2'],
                                          path.join(tmp, 'log'));
  try {
    await run(url, model, a1, tmp);
  } finally {
    server.kill('SIGTERM');
    await new Promise(r => server.on('exit', r));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log('serve_openai: ' + checks + ' checks passed (openai ' +
              JSON.parse(fs.readFileSync(require.resolve('openai').replace(/(node_modules\/openai)\/.*/, '$1/package.json'))).version + ')');
}

async function run(url, model, a1, tmp) {
  const client = new OpenAI({ baseURL: url + '/v1', apiKey: KEY, maxRetries: 0 });
  const prompt = 'Once upon a time';
  const sample = { temperature: 0.8, top_p: 0.95, seed: 7 };
  const cliSample = ['--temperature', '0.8', '--top-p', '0.95', '--seed', '7'];

  const models = await client.models.list();
  const ids = models.data.map(m => m.id);
  check(ids.length === 2 && ids[0] === 'stories' && ids[1] === 'a1', 'models.list: ' + ids);
  check(models.data[1].parent === 'stories', 'a1 parent: ' + JSON.stringify(models.data[1]));

  for (const name of ['stories', 'a1']) {
    const use = name === 'a1' ? ['--adapter', 'a1=' + a1, '--use', 'a1'] : [];
    const [wantText, wantIds] = cliGenerate(['--model', model, '--text', prompt, '--max-new', '32', ...use, ...cliSample]);
    const c = await client.completions.create({ model: name, prompt, max_tokens: 32, ...sample });
    check(prompt + c.choices[0].text === wantText, name + ': text ' + JSON.stringify(c.choices[0].text) + ' vs ' + JSON.stringify(wantText));
    check(JSON.stringify(c.choices[0].token_ids) === JSON.stringify(wantIds), name + ': ids');
    check(c.usage.completion_tokens === wantIds.length, name + ': usage ' + JSON.stringify(c.usage));
    let streamed = '', n = 0;
    const stream = await client.completions.create({ model: name, prompt, max_tokens: 32, stream: true, ...sample });
    for await (const chunk of stream) {
      streamed += chunk.choices[0].text;
      n++;
    }
    check(streamed === c.choices[0].text && n > 1, name + ': streamed ' + JSON.stringify(streamed));
  }

  const [chatText, chatIds] = cliGenerate(['--model', model, '--chat', prompt, '--max-new', '24', ...cliSample]);
  const chat = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: prompt }],
                                                      max_tokens: 24, ...sample });
  check(chat.choices[0].message.role === 'assistant' && chat.choices[0].message.content === chatText,
        'chat: ' + JSON.stringify(chat.choices[0].message) + ' vs ' + JSON.stringify(chatText));
  let deltas = '';
  const cs = await client.chat.completions.create({ model: 'stories', messages: [{ role: 'user', content: prompt }],
                                                    max_tokens: 24, stream: true, ...sample });
  for await (const chunk of cs) deltas += chunk.choices[0].delta.content || '';
  check(deltas === chatText, 'chat stream: ' + JSON.stringify(deltas));

  // echo + logprobs: the prompt's entries first (the first one null), then the generated ones; streamed, the
  // echoed prompt with its entries comes first and the joined entries equal the whole body's
  const el = { model: 'a1', prompt, max_tokens: 5, temperature: 0, logprobs: 2, echo: true };
  const ec = (await client.completions.create(el)).choices[0];
  const lp = ec.logprobs, nAll = lp.tokens.length;
  check(ec.text.startsWith(prompt) && nAll === lp.token_logprobs.length && nAll === lp.top_logprobs.length &&
        nAll === lp.text_offset.length && nAll > ec.token_ids.length && lp.token_logprobs[0] === null &&
        lp.top_logprobs[0] === null && lp.token_logprobs.slice(1).every((x, k) =>
          x <= 0 && Math.max(...Object.values(lp.top_logprobs[k + 1])) >= x),
        'echo + logprobs: ' + JSON.stringify(lp));
  const joined = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let first = null;
  for await (const chunk of await client.completions.create({ ...el, stream: true })) {
    const l = chunk.choices[0].logprobs;
    if (first === null) first = chunk.choices[0];
    for (const k in joined) joined[k].push(...(l ? l[k] : []));
  }
  check(first.text === prompt && first.logprobs.token_logprobs[0] === null && JSON.stringify(joined) ===
        JSON.stringify({ tokens: lp.tokens, token_logprobs: lp.token_logprobs, top_logprobs: lp.top_logprobs,
                         text_offset: lp.text_offset }),
        'echo + logprobs streamed: ' + JSON.stringify(joined));

  const loaded = await client.post('/load_lora_adapter', { body: { lora_name: 'a2', lora_path: a1 } });
  check(String(loaded).includes('added'), 'load_lora_adapter: ' + loaded);
  check((await client.models.list()).data.some(m => m.id === 'a2'), 'a2 listed after load');
  const c2 = await client.completions.create({ model: 'a2', prompt, max_tokens: 8, temperature: 0 });
  const c1 = await client.completions.create({ model: 'a1', prompt, max_tokens: 8, temperature: 0 });
  check(c2.choices[0].text === c1.choices[0].text, 'a2 (same folder as a1) answers as a1');
  await client.post('/unload_lora_adapter', { body: { lora_name: 'a2' } });

  async function fails(promise, cls, status, what) {
    try {
      await promise;
      check(false, what + ': succeeded');
    } catch (e) {
      check(e instanceof cls && e.status === status, what + ': ' + e);
    }
  }
  await fails(client.completions.create({ model: 'a2', prompt, max_tokens: 2 }), OpenAI.NotFoundError, 404, 'unloaded a2');
  await fails(client.completions.create({ model: 'stories', prompt, max_tokens: 2, n: 2 }), OpenAI.BadRequestError, 400, 'n = 2');
  const bad = new OpenAI({ baseURL: url + '/v1', apiKey: 'wrong', maxRetries: 0 });
  await fails(bad.models.list(), OpenAI.AuthenticationError, 401, 'wrong key');
}

main().catch(e => { console.log('FAIL: ' + (e && e.stack || e)); process.exit(1); });
