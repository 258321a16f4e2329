// Browser test of the web page of `instantstyle serve` (server/web/index.html, served at GET /).
//
//   npm ci --prefix tests/browser
//   node tests/browser/page_test.mjs --cli build/instantstyle --golden ../shared/golden [--chromium /usr/bin/chromium]
//
// Starts the server on a free port with the tiny golden model, drives the page in headless Chromium
// (playwright-core, no bundled browser), and checks: a generation with a style image shows progress,
// the result and a gallery item with a download link; a long generation is cancelled from the page
// (the server's job is `cancelled` too); an invalid field gives a visible error naming it; SIGTERM
// stops the server with exit status 0 (under AddressSanitizer a leak makes it non-zero).
// One line per check; any failure prints what failed and exits 1. The whole test stays under 60 s.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const TOTAL_LIMIT_MS = 58000;
const t0 = Date.now();
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

function usage(msg) {
  if (msg) console.error(`page_test: ${msg}`);
  console.error('usage: node tests/browser/page_test.mjs --cli BIN --golden DIR [--chromium PATH] [--style-image PNG]');
  process.exit(2);
}
const opt = { chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const m = /^--(cli|golden|chromium|style-image)(?:=(.*))?$/.exec(a[i]);
    if (!m) usage(`unknown argument ${a[i]}`);
    const v = m[2] !== undefined ? m[2] : a[++i];
    if (v === undefined) usage(`--${m[1]} needs a value`);
    opt[m[1]] = v;
  }
  if (!opt.cli || !opt.golden) usage('--cli and --golden are required');
}
const cli = path.resolve(opt.cli);
const golden = path.resolve(opt.golden);
const model = path.join(golden, 'models', 'tiny-sdxl');
const ipAdapter = path.join(golden, 'models', 'tiny-ip-adapter', 'ip-adapter_sdxl.safetensors');
const styleImage = opt['style-image'] ? path.resolve(opt['style-image']) : findStyleImage();

function findStyleImage() {
  const inRepo = path.join(repo, 'docs', 'examples', 'style.png');
  if (fs.existsSync(inRepo)) return inRepo;
  const dir = path.join(golden, 'images');
  const png = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort()[0] : null;
  return png ? path.join(dir, png) : inRepo;
}

/* ---------------------------------------------------------------- reporting */
let server = null, browser = null, serverLog = '', finished = false;
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1) + ' s';
function ok(what) { console.log(`ok   ${what} (${elapsed()})`); }
class CheckError extends Error {}
function check(cond, what, detail) {
  if (!cond) throw new CheckError(`${what}${detail !== undefined ? ': ' + detail : ''}`);
  ok(what);
}
async function step(what, fn) {
  try { return await fn(); } catch (e) {
    if (e instanceof CheckError) throw e;
    throw new CheckError(`${what}: ${e && e.message ? e.message.split('\n')[0] : e}`);
  }
}
async function fail(message) {
  if (finished) return;
  finished = true;
  console.log(`FAIL ${message} (${elapsed()})`);
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL');
  }
  const tail = serverLog.split('\n').slice(-25).join('\n');
  if (tail.trim()) console.log(`--- server output (last lines) ---\n${tail}\n---`);
  process.exit(1);
}
const watchdog = setTimeout(() => fail(`time limit: the test ran past ${TOTAL_LIMIT_MS / 1000} s`), TOTAL_LIMIT_MS);

/* ---------------------------------------------------------------- server */
function startServer() {
  for (const [what, p] of [['--cli', cli], ['model', model], ['IP-Adapter', ipAdapter], ['style image', styleImage]])
    if (!fs.existsSync(p)) throw new CheckError(`${what} not found: ${p}`);
  const args = ['serve', '--model', model, '--ip-adapter', ipAdapter, '--port', '0', '--precision', 'f32'];
  server = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new CheckError('server did not print "listening on http://HOST:PORT/" within 30 s')), 30000);
    server.stdout.on('data', (d) => {
      const s = d.toString();
      serverLog += s;
      out += s;
      const m = /listening on (http:\/\/(\S+?):(\d+)\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        let host = m[2];
        if (host === '0.0.0.0' || host === '[::]' || host === '::') host = '127.0.0.1';
        out = '';
        resolve(`http://${host}:${m[3]}/`);
      }
    });
    server.stderr.on('data', (d) => { serverLog += d.toString(); });
    server.on('error', (e) => { clearTimeout(timer); reject(new CheckError(`cannot start ${cli}: ${e.message}`)); });
    server.on('exit', (code, sig) => {
      if (!finished && !stopping) {
        clearTimeout(timer);
        reject(new CheckError(`server exited early (status ${code}, signal ${sig})`));
        fail(`server exited early (status ${code}, signal ${sig})`);
      }
    });
  });
}
let stopping = false;
function stopServer() {
  stopping = true;
  return new Promise((resolve) => {
    if (server.exitCode !== null || server.signalCode !== null) return resolve({ code: server.exitCode, signal: server.signalCode });
    const timer = setTimeout(() => { server.kill('SIGKILL'); }, 15000);
    server.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
    server.kill('SIGTERM');
  });
}

async function getJson(base, p) {
  const r = await fetch(new URL(p, base));
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body, text, type: r.headers.get('content-type') || '' };
}

/* ---------------------------------------------------------------- page helpers */
// Record every distinct value of the progress bar, the status text and the ETA while a job runs.
async function startRecording(page) {
  await page.evaluate(() => {
    const p = document.getElementById('progress');
    const t = document.getElementById('progress_text');
    const e = document.getElementById('eta');
    window.__rec = { values: [], texts: [], etas: [] };
    const push = (arr, v) => { if (arr[arr.length - 1] !== v) arr.push(v); };
    clearInterval(window.__recTimer);
    window.__recSample = () => {
      push(window.__rec.values, p.value);
      push(window.__rec.texts, t.textContent);
      if (e.textContent) push(window.__rec.etas, e.textContent);
    };
    window.__recTimer = setInterval(window.__recSample, 10);
  });
}
/* One last sample first: the state a wait just saw may be newer than the timer's last tick (under load the
 * 10 ms timer lags, and a check on the recording then missed the value the wait had seen). */
async function stopRecording(page) {
  return page.evaluate(() => { window.__recSample(); clearInterval(window.__recTimer); return window.__rec; });
}
const jobIdOf = (page) => page.getAttribute('#progress_text', 'data-job-id');

/* ---------------------------------------------------------------- the test */
async function main() {
  console.log(`page_test: cli ${cli}, golden ${golden}, chromium ${opt.chromium}, style image ${styleImage}`);
  const base = await step('start server', startServer);
  ok(`server listening on ${base}`);

  const root = await step('GET /', () => getJson(base, '/'));
  check(root.status === 200 && /text\/html/.test(root.type) && root.text.includes('id="generate"'),
    'GET / serves the page (200, text/html)', `status ${root.status}, content-type ${root.type}`);
  const info = await step('GET /v1/info', () => getJson(base, '/v1/info'));
  check(info.status === 200 && info.body && Array.isArray(info.body.samplers) && info.body.samplers.length > 0,
    'GET /v1/info lists samplers', info.text.slice(0, 200));

  browser = await step('launch chromium', () => chromium.launch({
    executablePath: opt.chromium, args: ['--no-sandbox', '--headless'], timeout: 20000,
  }));
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const posted = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/jobs') {
      try { posted.push(r.postDataJSON()); } catch { posted.push(null); }
    }
  });

  await step('open the page', () => page.goto(base, { waitUntil: 'load' }));
  await step('page loads /v1/info', () => page.waitForFunction(
    (n) => document.body.dataset.ready === '1' && document.querySelectorAll('#sampler option').length >= n,
    info.body.samplers.length));
  const samplerOptions = await page.$$eval('#sampler option', (os) => os.map((o) => o.value).filter(Boolean));
  check(info.body.samplers.every((s) => samplerOptions.includes(typeof s === 'string' ? s : s.name)),
    'sampler select lists the samplers of /v1/info', samplerOptions.join(','));
  const ids = ['prompt', 'negative_prompt', 'style_image', 'style_drop', 'style_mode', 'style_spec', 'ip_scale',
    'content_prompt', 'content_scale', 'width', 'height', 'steps', 'cfg', 'sampler', 'seed', 'generate', 'cancel',
    'progress', 'progress_text', 'eta', 'error', 'result', 'result_params', 'gallery'];
  const missing = await page.evaluate((ids) => ids.filter((id) => !document.getElementById(id)), ids);
  check(missing.length === 0, 'page has every element id', `missing: ${missing.join(', ')}`);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, textarea, select')]
    .filter((n) => !document.querySelector(`label[for="${n.id}"]`)).map((n) => n.id || n.name));
  check(unlabelled.length === 0, 'every input has a <label for>', unlabelled.join(', '));
  check(await page.evaluate(() => document.getElementById('progress').tagName === 'PROGRESS'),
    '#progress is a <progress> element');

  /* ---- 1. a generation with a style image ---- */
  const sampler = samplerOptions.includes('euler') ? 'euler' : samplerOptions[0];
  const steps1 = 5;
  await step('fill the form', async () => {
    await page.fill('#prompt', 'a cat sitting on a chair');
    await page.fill('#negative_prompt', 'blurry');
    await page.fill('#width', '64');
    await page.fill('#height', '64');
    await page.fill('#steps', String(steps1));
    await page.fill('#cfg', '1'); // <= 1: one UNet evaluation per step, half the time
    await page.selectOption('#sampler', sampler);
    await page.fill('#seed', '42');
    await page.selectOption('#style_mode', 'style');
    await page.fill('#ip_scale', '0.8');
    await page.fill('#content_prompt', 'a landscape');
    await page.fill('#content_scale', '0.5');
    await page.setInputFiles('#style_image', styleImage);
  });
  await step('style thumbnail', () => page.waitForFunction(() => {
    const img = document.querySelector('#style_drop img');
    return img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0;
  }));
  ok('style image picked: thumbnail shown');
  check(!(await page.isVisible('#style_spec')), 'custom spec field hidden for style mode "style"');

  await startRecording(page);
  await page.click('#generate');
  await step('result image', () => page.waitForFunction(() => {
    const r = document.getElementById('result');
    return r.getAttribute('src') && r.complete && r.naturalWidth > 0 &&
      document.getElementById('progress_text').dataset.state === 'done';
  }, null, { timeout: 40000 }));
  const rec1 = await stopRecording(page);
  const body1 = posted[0] || {};
  check(posted.length === 1 && body1.prompt === 'a cat sitting on a chair' && body1.negative_prompt === 'blurry' &&
    body1.width === 64 && body1.height === 64 && body1.steps === steps1 && body1.cfg === 1 && body1.sampler === sampler &&
    body1.seed === 42 && body1.style_mode === 'style' && body1.ip_scale === 0.8 &&
    body1.content_prompt === 'a landscape' && body1.content_scale === 0.5,
    'POST /v1/jobs body carries the form fields as JSON numbers and strings',
    JSON.stringify({ ...body1, style_image: body1.style_image && body1.style_image.slice(0, 30) }));
  check(typeof body1.style_image === 'string' && /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/.test(body1.style_image) &&
    Buffer.from(body1.style_image.split(',')[1], 'base64').equals(fs.readFileSync(styleImage)),
    'style_image sent as a base64 data URL of the file');
  /* 5 tiny steps may all run before the event stream connects (the first event is then the last step): this
   * run must end at 1; the bar moving step by step is checked on the long run below */
  const positive = [...new Set(rec1.values.filter((v) => v > 0))];
  check(positive.includes(1), 'progress bar value reached 1', `values seen: ${rec1.values.join(', ')}`);
  ok(`progress values seen: ${rec1.values.map((v) => +v.toFixed(3)).join(' ')}`);
  const stepTexts = rec1.texts.filter((t) => new RegExp(`\\b\\d+/${steps1}\\b`).test(t));
  check(stepTexts.length >= 1, `progress text shows step x/${steps1}`, rec1.texts.join(' | '));
  check(rec1.etas.some((t) => /ETA/i.test(t)), 'ETA shown while running', rec1.etas.join(' | '));
  const result = await page.evaluate(() => {
    const r = document.getElementById('result');
    return { w: r.naturalWidth, h: r.naturalHeight, params: document.getElementById('result_params').textContent };
  });
  check(result.w === 64 && result.h === 64, 'result image shown, 64x64', `${result.w}x${result.h}`);
  check(/\b42\b/.test(result.params) && /64\s*[x×]\s*64/.test(result.params) && new RegExp(`\\b${steps1}\\b`).test(result.params) &&
    result.params.includes(sampler) && /second/i.test(result.params),
    'result parameters show seed, size, steps, sampler, seconds', result.params);
  const job1 = await jobIdOf(page);
  const st1 = await getJson(base, `/v1/jobs/${encodeURIComponent(job1)}`);
  check(st1.status === 200 && st1.body.state === 'done' && st1.body.result && st1.body.result.seed === 42,
    `server job ${job1} is done with seed 42`, st1.text.slice(0, 300));
  const gal1 = await page.evaluate(async () => {
    const items = [...document.querySelectorAll('#gallery .gallery-item')];
    const out = [];
    for (const it of items) {
      const img = it.querySelector('img'), a = it.querySelector('a[download]');
      let magic = null;
      if (a) {
        const buf = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
        magic = Array.from(buf.slice(0, 8));
      }
      out.push({ img: !!img && img.naturalWidth > 0, download: a ? a.getAttribute('download') : null, magic });
    }
    return out;
  });
  check(gal1.length === 1 && gal1[0].img, 'gallery has one item with its image', JSON.stringify(gal1));
  check(gal1[0].download && /42/.test(gal1[0].download) && /\.png$/.test(gal1[0].download),
    `gallery item has a download link named with the seed (${gal1[0].download})`);
  check(JSON.stringify(gal1[0].magic) === JSON.stringify([137, 80, 78, 71, 13, 10, 26, 10]),
    'download link gives a PNG', JSON.stringify(gal1[0].magic));
  const dl = await step('download', async () => {
    const [d] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#gallery .gallery-item a[download]')]);
    return d;
  });
  check(dl.suggestedFilename() === gal1[0].download, `clicking the link downloads ${dl.suggestedFilename()}`);

  /* ---- 2. a long generation, cancelled from the page; custom style spec ---- */
  const spec = '{"up": {"block_0": [0.0, 1.0, 0.0]}}';
  await step('fill the form for a long run', async () => {
    await page.fill('#content_prompt', '');
    await page.fill('#steps', '150');
    await page.fill('#seed', '-1');
    await page.selectOption('#style_mode', 'custom');
    await page.waitForSelector('#style_spec', { state: 'visible' });
    await page.fill('#style_spec', spec);
  });
  ok('custom style mode shows the spec field');
  await startRecording(page);
  await page.click('#generate');
  await step('long run starts', () => page.waitForFunction(() => {
    const t = document.getElementById('progress_text');
    return t.dataset.state === 'running' && /\b[1-9]\d*\/150\b/.test(t.textContent);
  }, null, { timeout: 30000 }));
  const body2 = posted[1] || {};
  check(body2.style_mode === spec && body2.steps === 150 && body2.seed === -1,
    'custom spec sent as style_mode', JSON.stringify({ style_mode: body2.style_mode, steps: body2.steps, seed: body2.seed }));
  check(await page.isEnabled('#cancel') && await page.isDisabled('#generate'), 'Cancel enabled, Generate disabled while running');
  ok(`long run in progress: ${await page.textContent('#progress_text')}`);
  await step('the progress bar moves step by step', () => page.waitForFunction(() => {
    const v = document.getElementById('progress').value;
    return v > 0.02 && v < 1;
  }, null, { timeout: 30000 }));
  const recLong = await stopRecording(page);
  const moving = [...new Set(recLong.values.filter((v) => v > 0 && v < 1))];
  check(moving.length >= 2, 'progress bar moved through several values on the long run',
    `values seen: ${recLong.values.map((v) => +v.toFixed(3)).join(' ')}`);
  await step('live preview shown while it runs (the server\'s preview.png of a step, 1/8 of the size)', () => page.waitForFunction(() => {
    const p = document.getElementById('preview');
    return p && !p.hidden && Number(p.dataset.loaded || 0) >= 1 && /preview\.png\?step=\d+/.test(p.src);
  }, null, { timeout: 30000 }));
  const job2 = await jobIdOf(page);
  check(job2 && job2 !== job1, `second job has its own id (${job2})`);
  await page.click('#cancel');
  await step('page reports cancelled', () => page.waitForFunction(
    () => document.getElementById('progress_text').dataset.state === 'cancelled', null, { timeout: 20000 }));
  const cancelText = await page.textContent('#progress_text');
  check(/cancel/i.test(cancelText), `page reports cancelled ("${cancelText}")`);
  const st2 = await getJson(base, `/v1/jobs/${encodeURIComponent(job2)}`);
  check(st2.status === 200 && st2.body.state === 'cancelled', `server job ${job2} is cancelled`, st2.text.slice(0, 300));
  check(await page.isEnabled('#generate') && await page.isDisabled('#cancel'), 'Generate enabled again, Cancel disabled');
  check(await page.locator('#gallery .gallery-item').count() === 1, 'gallery unchanged by the cancelled job');

  /* ---- 3. errors from the API are shown, the field highlighted ---- */
  await page.selectOption('#style_mode', 'style');
  await page.fill('#width', '64');
  await page.fill('#height', '64');
  await page.fill('#steps', '0');
  await page.click('#generate');
  await step('error shown', () => page.waitForFunction(() => {
    const e = document.getElementById('error');
    return e.textContent.trim() !== '' && e.getBoundingClientRect().height > 0;
  }, null, { timeout: 10000 }));
  const err1 = await page.evaluate(() => ({
    text: document.getElementById('error').textContent,
    invalid: document.getElementById('steps').getAttribute('aria-invalid') === 'true' &&
      document.getElementById('steps').classList.contains('invalid'),
  }));
  check(/steps/.test(err1.text), `steps 0: visible error naming the field ("${err1.text}")`);
  check(err1.invalid, 'steps 0: #steps highlighted (class invalid, aria-invalid)');
  check(posted.length === 3 && posted[2].steps === 0, 'steps 0 was sent to the server (it validates)');
  check(await page.isEnabled('#generate'), 'Generate enabled after the error');

  const big = (info.body.max_size > 0 ? info.body.max_size : 2048) + 8;
  await page.fill('#steps', '4');
  await page.fill('#width', String(big));
  await page.click('#generate');
  await step('second error shown', () => page.waitForFunction(() =>
    document.getElementById('width').getAttribute('aria-invalid') === 'true', null, { timeout: 10000 }));
  const err2 = await page.textContent('#error');
  check(/width/.test(err2) && !(await page.getAttribute('#steps', 'aria-invalid')),
    `width ${big} > max_size: error names width, steps no longer highlighted ("${err2}")`);

  await page.fill('#width', '64');
  await page.fill('#prompt', '');
  await page.click('#generate');
  await step('empty prompt error shown', () => page.waitForFunction(() =>
    document.getElementById('prompt').getAttribute('aria-invalid') === 'true', null, { timeout: 10000 }));
  const err3 = await page.textContent('#error');
  check(/prompt/.test(err3) && !(await page.getAttribute('#width', 'aria-invalid')),
    `empty prompt: error names prompt, width no longer highlighted ("${err3}")`);

  // A block spec the server cannot read: refused at once or a failed job; either way a visible error.
  await page.fill('#prompt', 'a cat sitting on a chair');
  await page.selectOption('#style_mode', 'custom');
  await page.fill('#style_spec', 'bogus{');
  await page.click('#generate');
  await step('bad spec error shown', () => page.waitForFunction(() => {
    const t = document.getElementById('progress_text').dataset.state;
    return /bogus/.test(document.getElementById('error').textContent) && (t === 'failed' || t === 'idle') &&
      !document.getElementById('generate').disabled;
  }, null, { timeout: 20000 }));
  const err4 = await page.textContent('#error');
  check(err4.length > 0, `custom spec "bogus{": visible error ("${err4.slice(0, 100)}...")`);

  check(pageErrors.length === 0, 'no uncaught errors in the page', pageErrors.join(' | '));
  await browser.close();
  browser = null;

  const exit = await stopServer();
  check(exit.code === 0 && exit.signal === null, 'SIGTERM: server exits with status 0',
    `status ${exit.code}, signal ${exit.signal}`);
  finished = true;
  clearTimeout(watchdog);
  console.log(`PASS page_test (${elapsed()})`);
}

main().catch((e) => fail(e instanceof CheckError ? e.message : (e && e.stack ? e.stack : String(e))));
