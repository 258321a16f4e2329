#!/usr/bin/env node
// API tests for `instantstyle serve` against its contract, docs/SERVER.md.
//
//   node tests/server/api_test.mjs --cli build/instantstyle --golden ../shared/golden [--only REGEX]
//
// Node 18+, no npm dependencies: global fetch, node:net for raw sockets, node:zlib for PNG pixels.
// It starts two servers on the tiny golden model (f32, --port 0): the main one with --queue 4 for the
// API checks, a second with --timeout 3 --max-body-mb 1 --api-auth for authentication, body limits and
// slow or broken clients.
// Each server must exit with status 0 on SIGTERM (under AddressSanitizer a leak makes it non-zero).
// One line per check; exit status 1, with what failed, if any check fails.

import { spawn, execFile } from 'node:child_process';
import net from 'node:net';
import zlib from 'node:zlib';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------- setup

const argv = process.argv.slice(2);
function opt(name) {
    const i = argv.indexOf(name);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : undefined;
}
const CLI = opt('--cli');
const GOLDEN = opt('--golden');
const ONLY = opt('--only') ? new RegExp(opt('--only')) : null;
if (!CLI || !GOLDEN) {
    console.error('usage: node tests/server/api_test.mjs --cli PATH/instantstyle --golden GOLDEN_DIR [--only REGEX]');
    process.exit(2);
}
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const MODEL = path.join(GOLDEN, 'models', 'tiny-sdxl');
const ADAPTER = path.join(GOLDEN, 'models', 'tiny-ip-adapter', 'ip-adapter_sdxl.safetensors');
const STYLE_FILE = path.join(GOLDEN, 'images', 'odd_rgb_301x217.png');
const INIT_FILE = path.join(GOLDEN, 'images', 'i2i', 'content_64x64.png');
const BOMB_PNG = path.join(REPO, 'tests', 'regressions', 'images', 'png-bomb-16384x16384.png');
const BOMB_JPEG = path.join(REPO, 'tests', 'regressions', 'images', 'jpeg-progressive-bomb-16384x16384.jpg');
const EXAMPLE = path.join(REPO, 'examples', 'a1111_txt2img.sh');
for (const f of [CLI, MODEL, ADAPTER, STYLE_FILE, INIT_FILE, BOMB_PNG, BOMB_JPEG]) {
    if (!fs.existsSync(f)) {
        console.error(`api_test: missing ${f}`);
        process.exit(2);
    }
}
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'is-api-test-'));
const STYLE_B64 = fs.readFileSync(STYLE_FILE).toString('base64');
const INIT_B64 = fs.readFileSync(INIT_FILE).toString('base64');
const PROMPT = 'a lighthouse on a cliff, watercolor';
const NEGATIVE = 'blurry, text, watermark';
const T_START = Date.now();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const short = (s, n = 300) => {
    s = typeof s === 'string' ? s : JSON.stringify(s);
    return s === undefined ? 'undefined' : s.length > n ? s.slice(0, n) + `... (${s.length} chars)` : s;
};
class CheckError extends Error {}
function expect(cond, msg) {
    if (!cond) throw new CheckError(typeof msg === 'function' ? msg() : msg);
}

// ------------------------------------------------------------------------------------- check runner

const failures = [];
let skipped = 0;
async function check(name, fn, timeoutMs = 120000) {
    if (ONLY && !ONLY.test(name)) {
        skipped++;
        return;
    }
    const t0 = now();
    let timer;
    try {
        const note = await Promise.race([
            fn(),
            new Promise((_, rej) => {
                timer = setTimeout(() => rej(new CheckError(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
            }),
        ]);
        console.log(`ok   ${name}${note ? ` — ${note}` : ''} (${secs(now() - t0)})`);
    } catch (e) {
        const msg = e instanceof CheckError || e instanceof assert.AssertionError ? e.message : e.stack || String(e);
        failures.push(`${name}: ${msg}`);
        console.log(`FAIL ${name}: ${msg} (${secs(now() - t0)})`);
    } finally {
        clearTimeout(timer);
    }
}

// ------------------------------------------------------------------------------------------ servers

// Servers still running when the test exits (a check failed before stopping them) are killed.
const SERVERS = [];
process.on('exit', () => {
    for (const s of SERVERS) if (s.child && s.alive()) s.child.kill('SIGKILL');
});

class Server {
    constructor(label, extra) {
        this.label = label;
        this.args = ['serve', '--model', MODEL, '--ip-adapter', ADAPTER, '--port', '0', '--precision', 'f32', ...extra];
        this.stderr = '';
        this.base = null;
    }
    stderrTail(n = 2500) {
        const s = this.stderr.trim();
        return s ? `\n--- ${this.label} stderr (tail) ---\n${s.slice(-n)}\n---` : ' (stderr empty)';
    }
    async start() {
        this.child = spawn(CLI, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
        SERVERS.push(this);
        this.child.stderr.on('data', (d) => {
            this.stderr += d;
            if (this.stderr.length > 200000) this.stderr = this.stderr.slice(-100000);
        });
        this.exited = new Promise((res) => this.child.on('exit', (code, signal) => res({ code, signal })));
        this.exitInfo = null;
        this.exited.then((e) => (this.exitInfo = e));
        let out = '';
        this.base = await new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`no "listening on http://HOST:PORT/" line on stdout within 60 s; stdout: ${short(out)}${this.stderrTail()}`)), 60000);
            this.child.on('error', (e) => { clearTimeout(t); reject(e); });
            this.child.stdout.on('data', (d) => {
                out += d;
                const m = /listening on (http:\/\/(?:\[[^\]]+\]|[^\s/:]+):(\d+))\//.exec(out);
                if (m && !this.base) {
                    clearTimeout(t);
                    resolve(m[1].replace('://0.0.0.0:', '://127.0.0.1:'));
                }
            });
            this.exited.then((e) => { clearTimeout(t); reject(new Error(`exited (${JSON.stringify(e)}) before listening; stdout: ${short(out)}${this.stderrTail()}`)); });
        });
        const u = new URL(this.base);
        this.host = u.hostname.replace(/^\[|\]$/g, '');
        this.port = Number(u.port);
        return this.base;
    }
    alive() {
        return this.exitInfo === null;
    }
    async stop() {
        if (!this.child) throw new CheckError('never started');
        if (this.exitInfo) throw new CheckError(`had already exited: ${JSON.stringify(this.exitInfo)}${this.stderrTail()}`);
        const t0 = now();
        this.child.kill('SIGTERM');
        const e = await Promise.race([this.exited, sleep(60000).then(() => null)]);
        if (!e) {
            this.child.kill('SIGKILL');
            throw new CheckError(`still running 60 s after SIGTERM (killed)${this.stderrTail()}`);
        }
        expect(e.code === 0 && e.signal === null, () => `exit status ${e.code}, signal ${e.signal} after SIGTERM (want 0)${this.stderrTail(6000)}`);
        return `exit status 0 after ${secs(now() - t0)}`;
    }
}

// -------------------------------------------------------------------------------------------- HTTP

// Headers every request to a server gets (its --api-auth credentials), by base URL.
const BASE_HEADERS = new Map();

async function http(base, method, p, body, { headers = {}, timeout = 60000, signal, noAuth = false } = {}) {
    const init = { method, headers: { ...(noAuth ? {} : BASE_HEADERS.get(base)), ...headers }, signal: signal || AbortSignal.timeout(timeout) };
    if (body !== undefined) {
        init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
        if (!Object.keys(init.headers).some((k) => k.toLowerCase() === 'content-type')) init.headers['content-type'] = 'application/json';
    }
    const t0 = now();
    let r;
    try {
        r = await fetch(base + p, init);
    } catch (e) {
        throw new CheckError(`${method} ${p}: no answer (${e.cause ? e.cause.code || e.cause.message : e.message})`);
    }
    const buf = Buffer.from(await r.arrayBuffer());
    let json;
    try {
        json = JSON.parse(buf.toString('utf8'));
    } catch {
        json = undefined;
    }
    return { status: r.status, headers: r.headers, buf, json, text: buf.toString('utf8'), ms: now() - t0, what: `${method} ${p}` };
}

function describe(r) {
    return `${r.what} -> ${r.status} ${short(r.text)}`;
}

function expectStatus(r, status) {
    expect(r.status === status, () => `${describe(r)} (want ${status})`);
}

function expectJson(r, status) {
    expectStatus(r, status);
    expect(r.json !== undefined, () => `${r.what}: body is not JSON: ${short(r.text)}`);
    const ct = r.headers.get('content-type') || '';
    expect(/application\/json/i.test(ct), () => `${r.what}: Content-Type ${JSON.stringify(ct)} (want application/json)`);
    return r.json;
}

// The error shape of docs/SERVER.md: {"error": {"status", "code", "message", "field"?}, "detail": message}.
// status: a number or '4xx'; field: a string (exact), a RegExp, null (must be absent) or undefined (either).
function expectError(r, status, code, field) {
    if (status === '4xx') expect(r.status >= 400 && r.status < 500, () => `${describe(r)} (want a 4xx)`);
    else expect(r.status === status, () => `${describe(r)} (want ${status})`);
    const j = r.json;
    expect(j && typeof j === 'object' && !Array.isArray(j), () => `${r.what}: error body is not a JSON object: ${short(r.text)}`);
    const ct = r.headers.get('content-type') || '';
    expect(/application\/json/i.test(ct), () => `${r.what}: error Content-Type ${JSON.stringify(ct)} (want application/json)`);
    const e = j.error;
    expect(e && typeof e === 'object', () => `${r.what}: no "error" object: ${short(r.text)}`);
    expect(e.status === r.status, () => `${r.what}: error.status ${JSON.stringify(e.status)} != HTTP status ${r.status}`);
    expect(typeof e.code === 'string' && e.code, () => `${r.what}: error.code missing: ${short(r.text)}`);
    if (code) expect(e.code === code, () => `${r.what}: error.code ${JSON.stringify(e.code)} (want ${JSON.stringify(code)}): ${short(r.text)}`);
    expect(typeof e.message === 'string' && e.message, () => `${r.what}: error.message missing: ${short(r.text)}`);
    expect(j.detail === e.message, () => `${r.what}: "detail" ${short(j.detail)} does not repeat error.message ${short(e.message)}`);
    if (typeof field === 'string') expect(e.field === field, () => `${r.what}: error.field ${JSON.stringify(e.field)} (want ${JSON.stringify(field)}): ${short(r.text)}`);
    else if (field instanceof RegExp) expect(typeof e.field === 'string' && field.test(e.field), () => `${r.what}: error.field ${JSON.stringify(e.field)} (want one matching ${field}): ${short(r.text)}`);
    else if (field === null) expect(e.field === undefined || e.field === null, () => `${r.what}: unexpected error.field ${JSON.stringify(e.field)}`);
    return e;
}

// ----------------------------------------------------------------------------------- raw sockets

function connect(srv) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: srv.host, port: srv.port });
        s.rx = Buffer.alloc(0);
        s.closedAt = null;
        s.closing = new Promise((res) => s.on('close', () => { s.closedAt = now(); res(); }));
        s.on('data', (d) => (s.rx = Buffer.concat([s.rx, d])));
        s.on('error', (e) => (s.err = e));
        s.once('connect', () => resolve(s));
        s.once('error', reject);
    });
}

// One HTTP/1.1 response in bytes: {status, headers, body} once complete (or, after the connection
// closed, with whatever body came), else null.
function parseResponse(buf, closed = false) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return closed && buf.length ? { status: -1, headers: {}, body: buf } : null;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) return { status: -1, headers: {}, body: buf };
    const headers = {};
    for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body = buf.subarray(end + 4);
    const res = { status: Number(m[1]), headers, body };
    if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (body.length < n) return closed ? res : null;
        res.body = body.subarray(0, n);
        return res;
    }
    if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        const parts = [];
        let i = 0;
        for (;;) {
            const e = body.indexOf('\r\n', i);
            if (e < 0) return closed ? res : null;
            const n = parseInt(body.subarray(i, e).toString('latin1'), 16);
            if (!(n > 0)) break;
            if (body.length < e + 2 + n) return closed ? res : null;
            parts.push(body.subarray(e + 2, e + 2 + n));
            i = e + 2 + n + 2;
        }
        res.body = Buffer.concat(parts);
        return res;
    }
    return closed ? res : null; // the body runs till the connection closes
}

// Waits for a whole response on a raw socket, or for the connection to close, or timeoutMs.
function rawResponse(s, timeoutMs) {
    return new Promise((resolve) => {
        const t0 = now();
        const iv = setInterval(() => {
            const closed = s.closedAt !== null;
            const r = parseResponse(s.rx, closed || now() - t0 > timeoutMs);
            if (r || closed || now() - t0 > timeoutMs) {
                clearInterval(iv);
                resolve(r);
            }
        }, 10);
    });
}

function jsonOf(buf) {
    try {
        return JSON.parse(buf.toString('utf8'));
    } catch {
        return undefined;
    }
}

// --------------------------------------------------------------------------------------------- PNG

function pngChunks(buf) {
    const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(Buffer.isBuffer(buf) && buf.length > 8 && buf.subarray(0, 8).equals(sig), () => `not a PNG (first bytes ${buf ? buf.subarray(0, 8).toString('hex') : 'none'})`);
    const chunks = [];
    let i = 8;
    while (i + 12 <= buf.length) {
        const n = buf.readUInt32BE(i);
        const type = buf.subarray(i + 4, i + 8).toString('latin1');
        expect(i + 12 + n <= buf.length, `PNG chunk ${type} runs past the end`);
        chunks.push({ type, data: buf.subarray(i + 8, i + 8 + n) });
        i += 12 + n;
        if (type === 'IEND') break;
    }
    expect(chunks.length && chunks[0].type === 'IHDR', 'PNG without IHDR');
    expect(chunks[chunks.length - 1].type === 'IEND', 'PNG without IEND');
    return chunks;
}

// Pixels of a PNG: the IDAT stream inflated and unfiltered (8-bit, non-interlaced), else just inflated.
function pngPixels(buf) {
    const chunks = pngChunks(buf);
    const h = chunks[0].data;
    const w = h.readUInt32BE(0), ht = h.readUInt32BE(4), depth = h[8], ctype = h[9], interlace = h[12];
    const idat = Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data));
    const raw = zlib.inflateSync(idat);
    const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[ctype];
    if (depth !== 8 || interlace !== 0 || !channels) return { w, h: ht, ctype, depth, pixels: raw, filtered: true };
    const bpp = channels, stride = w * bpp;
    expect(raw.length === ht * (stride + 1), `PNG IDAT holds ${raw.length} bytes, want ${ht * (stride + 1)}`);
    const px = Buffer.alloc(ht * stride);
    for (let y = 0; y < ht; y++) {
        const f = raw[y * (stride + 1)];
        const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
        const o = y * stride;
        for (let x = 0; x < stride; x++) {
            const a = x >= bpp ? px[o + x - bpp] : 0;
            const b = y > 0 ? px[o - stride + x] : 0;
            const c = x >= bpp && y > 0 ? px[o - stride + x - bpp] : 0;
            let v = src[x];
            if (f === 1) v += a;
            else if (f === 2) v += b;
            else if (f === 3) v += (a + b) >> 1;
            else if (f === 4) {
                const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
                v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            } else expect(f === 0, `PNG row ${y} has filter type ${f}`);
            px[o + x] = v & 255;
        }
    }
    return { w, h: ht, ctype, depth, pixels: px };
}

function pngSize(buf) {
    const h = pngChunks(buf)[0].data;
    return [h.readUInt32BE(0), h.readUInt32BE(4)];
}

function samePixels(gotPng, wantPng, what) {
    const a = pngPixels(gotPng), b = pngPixels(wantPng);
    expect(a.w === b.w && a.h === b.h && a.ctype === b.ctype && a.depth === b.depth,
        () => `${what}: ${a.w}x${a.h} colour type ${a.ctype} depth ${a.depth}, CLI gives ${b.w}x${b.h} colour type ${b.ctype} depth ${b.depth}`);
    if (a.pixels.equals(b.pixels)) return `${a.w}x${a.h}, ${a.pixels.length} bytes equal`;
    let n = 0, first = -1, maxd = 0;
    const len = Math.min(a.pixels.length, b.pixels.length);
    for (let i = 0; i < len; i++) {
        const d = Math.abs(a.pixels[i] - b.pixels[i]);
        if (d) {
            n++;
            if (first < 0) first = i;
            maxd = Math.max(maxd, d);
        }
    }
    throw new CheckError(`${what}: pixels differ from the CLI's: ${n} of ${len} bytes differ (first at byte ${first}: ${a.pixels[first]} vs ${b.pixels[first]}, max |diff| ${maxd})`);
}

function b64png(s, what) {
    expect(typeof s === 'string' && s.length > 0, `${what}: not a base64 string: ${short(s)}`);
    const m = /^data:image\/png;base64,/.exec(s);
    expect(!m, `${what}: A1111 sends bare base64 (no data: prefix)`);
    expect(/^[A-Za-z0-9+/]+={0,2}$/.test(s), `${what}: not plain base64: ${short(s, 80)}`);
    const buf = Buffer.from(s, 'base64');
    pngChunks(buf);
    return buf;
}

// A PNG that is valid up to its IHDR and declares W x H (8-bit RGB), with a token IDAT.
const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c >>> 0;
    }
    return t;
})();
function crc32(buf) {
    let c = 0xffffffff;
    for (const b of buf) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
    const len = Buffer.alloc(4), crc = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
}
function hugePng(w, h) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; ihdr[9] = 2;
    return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr),
        pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(1000))), pngChunk('IEND', Buffer.alloc(0))]);
}

// ---------------------------------------------------------------------------------------- the CLI

function runCli(args) {
    return new Promise((resolve, reject) => {
        const t0 = now();
        execFile(CLI, args, { timeout: 180000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            if (err) reject(new CheckError(`instantstyle ${args.join(' ').slice(0, 300)} failed: ${err.message}\n${short(String(stderr), 2000)}`));
            else resolve(now() - t0);
        });
    });
}

const GEN_COMMON = ['--model', MODEL, '--ip-adapter', ADAPTER, '--style-image', STYLE_FILE, '--prompt', PROMPT,
    '--negative-prompt', NEGATIVE, '--steps', '4', '--cfg', '5', '--width', '64', '--height', '64', '--seed', '42',
    '--sampler', 'euler', '--style-blocks', 'style', '--precision', 'f32', '--quiet'];
const REF_T2I = path.join(TMP, 'cli_txt2img.png');
const REF_I2I = path.join(TMP, 'cli_img2img.png');

// ------------------------------------------------------------------------------- request builders

const ADV_STYLE = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]; // index 6 = up_blocks.0.attentions.1 (style)
function ipUnit(extra = {}) {
    return { enabled: true, module: 'ip-adapter_clip_sdxl', model: 'ip-adapter_sdxl', image: STYLE_B64, weight: 1,
        advanced_weighting: ADV_STYLE, ...extra };
}
function a1111(extra = {}) {
    return { prompt: PROMPT, negative_prompt: NEGATIVE, steps: 4, cfg_scale: 5, width: 64, height: 64, seed: 42,
        sampler_name: 'Euler', alwayson_scripts: { controlnet: { args: [ipUnit()] } }, ...extra };
}

function parseInfo(j, what) {
    expect(typeof j.info === 'string', () => `${what}: "info" is not a JSON string: ${short(j.info)}`);
    let info;
    try {
        info = JSON.parse(j.info);
    } catch {
        throw new CheckError(`${what}: "info" does not parse as JSON: ${short(j.info)}`);
    }
    expect(info && typeof info === 'object', `${what}: info is not an object`);
    return info;
}

const isIdle = (p) => p && p.progress === 0 && p.state && p.state.job_count === 0;

async function waitFor(fn, timeoutMs, what, intervalMs = 50) {
    const t0 = now();
    let last;
    for (;;) {
        last = await fn();
        if (last && last.ok) return { value: last.value, ms: now() - t0 };
        if (now() - t0 > timeoutMs) throw new CheckError(`${what}: not within ${timeoutMs / 1000} s; last seen: ${short(last && last.seen, 500)}`);
        await sleep(intervalMs);
    }
}

async function progressOf(base) {
    const r = await http(base, 'GET', '/sdapi/v1/progress', undefined, { timeout: 10000 });
    expectJson(r, 200);
    return r.json;
}

async function jobOf(base, id) {
    const r = await http(base, 'GET', `/v1/jobs/${id}`, undefined, { timeout: 10000 });
    expectJson(r, 200);
    return r.json;
}

async function waitJob(base, id, pred, timeoutMs, what) {
    return (await waitFor(async () => {
        const j = await jobOf(base, id);
        return { ok: pred(j), value: j, seen: j };
    }, timeoutMs, what)).value;
}

async function submit(base, body) {
    const r = await http(base, 'POST', '/v1/jobs', body);
    return r;
}

function percentile(sorted, p) {
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ----------------------------------------------------------------------------- main server checks

async function mainServerChecks(refs) {
    const srv = new Server('main server', ['--queue', '4']);
    let base;
    await check('main server starts and prints "listening on http://HOST:PORT/"', async () => {
        base = await srv.start();
        return base;
    }, 90000);
    if (!base) return;
    const needRefs = !ONLY || ['same pixels', 'img2img', 'POST /v1/jobs'].some((n) => ONLY.test(n));
    if (needRefs) {
        await check('CLI reference images (generate; generate --init-image --strength 0.5)', async () => {
            const a = await refs.t2i, b = await refs.i2i;
            return `${secs(a)} + ${secs(b)} (while the server started)`;
        }, 180000);
    }

    await check('GET /v1/info', async () => {
        const j = expectJson(await http(base, 'GET', '/v1/info'), 200);
        for (const k of ['version', 'model', 'ip_adapter', 'samplers', 'presets', 'style_modes', 'max_size', 'queue', 'defaults'])
            expect(k in j, `no "${k}" in ${short(j)}`);
        expect(Array.isArray(j.samplers) && ['euler', 'euler_a', 'ddim', 'dpmpp_2m'].every((s) => j.samplers.includes(s)), `samplers ${short(j.samplers)}`);
        expect(Array.isArray(j.style_modes) && ['style', 'style+layout', 'all'].every((s) => j.style_modes.includes(s)), `style_modes ${short(j.style_modes)}`);
        expect(j.max_size === 2048, `max_size ${j.max_size} (default 2048)`);
        expect(j.queue && j.queue.capacity === 4 && j.queue.queued === 0 && j.queue.running === 0, `queue ${short(j.queue)} (want capacity 4, 0 queued, 0 running)`);
        return `version ${j.version}`;
    });

    let t2iImage;
    await check('txt2img with an IP-Adapter ControlNet unit: same pixels as `instantstyle generate`', async () => {
        const body = a1111();
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', body);
        const j = expectJson(r, 200);
        expect(Array.isArray(j.images) && j.images.length === 1, () => `images: want an array of 1, got ${short(j.images)}`);
        t2iImage = b64png(j.images[0], 'images[0]');
        expect(j.parameters && typeof j.parameters === 'object' && !Array.isArray(j.parameters), `parameters is not an object: ${short(j.parameters)}`);
        for (const k of ['prompt', 'negative_prompt', 'steps', 'cfg_scale', 'width', 'height', 'seed', 'sampler_name'])
            expect(JSON.stringify(j.parameters[k]) === JSON.stringify(body[k]), `parameters.${k} = ${short(j.parameters[k])}, request had ${short(body[k])}`);
        const info = parseInfo(j, 'txt2img');
        expect(info.seed === 42, `info.seed ${info.seed} (want 42)`);
        expect(JSON.stringify(info.all_seeds) === '[42]', `info.all_seeds ${short(info.all_seeds)} (want [42])`);
        expect(info.prompt === PROMPT, `info.prompt ${short(info.prompt)}`);
        expect(Array.isArray(info.all_prompts) && info.all_prompts[0] === PROMPT, `info.all_prompts ${short(info.all_prompts)}`);
        expect(info.width === 64 && info.height === 64 && info.steps === 4 && info.cfg_scale === 5, `info width/height/steps/cfg_scale: ${short(info)}`);
        expect(info.sampler_name === 'Euler', `info.sampler_name ${short(info.sampler_name)} (want "Euler")`);
        expect(Array.isArray(info.infotexts) && info.infotexts.length === 1, `info.infotexts ${short(info.infotexts)}`);
        await refs.t2i;
        return samePixels(t2iImage, fs.readFileSync(REF_T2I), 'txt2img') + `, answered in ${secs(r.ms)}`;
    });

    await check('txt2img batch_size 2 -> 2 images, seeds 42 and 43', async () => {
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', a1111({ batch_size: 2, steps: 2 }));
        const j = expectJson(r, 200);
        expect(Array.isArray(j.images) && j.images.length === 2, () => `images: want 2, got ${short(j.images)}`);
        const imgs = j.images.map((s, i) => b64png(s, `images[${i}]`));
        for (const im of imgs) expect(pngSize(im).join('x') === '64x64', `image size ${pngSize(im).join('x')}`);
        const info = parseInfo(j, 'batch');
        expect(JSON.stringify(info.all_seeds) === '[42,43]', `info.all_seeds ${short(info.all_seeds)} (want [42, 43])`);
        expect(info.seed === 42, `info.seed ${info.seed} (want 42)`);
        expect(!pngPixels(imgs[0]).pixels.equals(pngPixels(imgs[1]).pixels), 'the two images have the same pixels');
        return `answered in ${secs(r.ms)}`;
    });

    await check('txt2img seed -1 -> a random seed in info.seed; width 71 rounds down to 64', async () => {
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', a1111({ seed: -1, steps: 1, width: 71 }));
        const j = expectJson(r, 200);
        expect(Array.isArray(j.images) && j.images.length === 1, () => `images: want 1, got ${short(j.images)}`);
        const info = parseInfo(j, 'seed -1');
        expect(Number.isInteger(info.seed) && info.seed >= 0, `info.seed ${short(info.seed)} (want an integer >= 0)`);
        expect(JSON.stringify(info.all_seeds) === JSON.stringify([info.seed]), `info.all_seeds ${short(info.all_seeds)} (want [${info.seed}])`);
        const size = pngSize(b64png(j.images[0], 'images[0]')).join('x');
        expect(size === '64x64', `image is ${size}, want 64x64 (width 71 rounded down to a multiple of 8)`);
        return `seed ${info.seed}`;
    });

    await check('img2img init_images + denoising_strength 0.5: same pixels as `generate --init-image --strength 0.5`', async () => {
        const r = await http(base, 'POST', '/sdapi/v1/img2img', a1111({ init_images: [INIT_B64], denoising_strength: 0.5 }));
        const j = expectJson(r, 200);
        expect(Array.isArray(j.images) && j.images.length === 1, () => `images: want 1, got ${short(j.images)}`);
        const png = b64png(j.images[0], 'images[0]');
        expect(pngSize(png).join('x') === '64x64', `image is ${pngSize(png).join('x')}, want 64x64`);
        const info = parseInfo(j, 'img2img');
        expect(info.seed === 42, `info.seed ${info.seed}`);
        await refs.i2i;
        return samePixels(png, fs.readFileSync(REF_I2I), 'img2img');
    });

    await check('GET /sdapi/v1/samplers, schedulers, sd-models, options, cmd-flags', async () => {
        const s = expectJson(await http(base, 'GET', '/sdapi/v1/samplers'), 200);
        expect(Array.isArray(s), `samplers: not an array: ${short(s)}`);
        for (const e of s)
            expect(typeof e.name === 'string' && Array.isArray(e.aliases) && e.options && typeof e.options === 'object', `sampler entry ${short(e)} (want {name, aliases: [], options: {}})`);
        const names = s.map((e) => e.name);
        for (const n of ['Euler a', 'Euler', 'DPM++ 2M', 'DDIM']) expect(names.includes(n), `samplers: no "${n}" in ${short(names)}`);
        const sch = expectJson(await http(base, 'GET', '/sdapi/v1/schedulers'), 200);
        expect(Array.isArray(sch), `schedulers: not an array: ${short(sch)}`);
        const m = expectJson(await http(base, 'GET', '/sdapi/v1/sd-models'), 200);
        expect(Array.isArray(m) && m.length >= 1, `sd-models: want a non-empty array: ${short(m)}`);
        for (const e of m) expect(typeof e.title === 'string' && typeof e.model_name === 'string', `sd-models entry ${short(e)} (want title, model_name)`);
        const o = expectJson(await http(base, 'GET', '/sdapi/v1/options'), 200);
        expect(o && typeof o === 'object' && !Array.isArray(o), `options: not an object: ${short(o)}`);
        const po = await http(base, 'POST', '/sdapi/v1/options', {});
        expect(po.status === 200, `POST /sdapi/v1/options {} -> ${describe(po)}`);
        const f = expectJson(await http(base, 'GET', '/sdapi/v1/cmd-flags'), 200);
        expect(f && typeof f === 'object' && !Array.isArray(f), `cmd-flags: not an object: ${short(f)}`);
        return `${names.length} samplers: ${names.join(', ')}; model ${m[0].title}`;
    });

    await check('GET /controlnet/version, model_list, module_list (sd-webui-controlnet discovery): the names a unit may use', async () => {
        const v = expectJson(await http(base, 'GET', '/controlnet/version'), 200);
        expect(v.version === 2, `version: ${short(v)}`);
        const ml = expectJson(await http(base, 'GET', '/controlnet/model_list'), 200);
        expect(Array.isArray(ml.model_list) && ml.model_list.length === 1 && /ip-adapter/.test(ml.model_list[0]), `model_list: ${short(ml)}`);
        const mo = expectJson(await http(base, 'GET', '/controlnet/module_list'), 200);
        expect(Array.isArray(mo.module_list) && mo.module_list.includes('ip-adapter_clip_sdxl'), `module_list: ${short(mo)}`);
        // a unit named with what discovery returned is taken (validated before the job runs: bad weight -> 400 naming it)
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', { prompt: PROMPT, steps: 1, width: 64, height: 64,
            alwayson_scripts: { controlnet: { args: [{ module: mo.module_list[0], model: ml.model_list[0], image: STYLE_B64, weight: -1 }] } } });
        const e = expectJson(r, 400);
        expect(e.error && /weight/.test(e.error.field || ''), `a unit named from discovery with weight -1: ${short(e)} (want the weight named)`);
        const bad = expectJson(await http(base, 'GET', '/controlnet/nope'), 404);
        expect(bad.error && bad.error.code === 'not_found', `unknown controlnet endpoint: ${short(bad)}`);
        return `model ${ml.model_list[0]}, modules ${mo.module_list.join(', ')}`;
    });

    await check('progress while a long txt2img runs; 200 /progress requests; interrupt answers promptly', async () => {
        const ctrl = new AbortController();
        const longReq = http(base, 'POST', '/sdapi/v1/txt2img', { prompt: PROMPT, steps: 150, width: 128, height: 128, seed: 1, sampler_name: 'Euler', cfg_scale: 5 },
            { signal: ctrl.signal }).catch((e) => ({ error: e }));
        try {
            idleProgressShape(await progressOf(base));
            expectJson(await http(base, 'GET', '/sdapi/v1/progress?skip_current_image=true'), 200);
            const { value: p } = await waitFor(async () => {
                const p = await progressOf(base);
                return { ok: p.progress > 0 && p.state && p.state.sampling_step > 0, value: p, seen: p };
            }, 30000, 'progress > 0 and state.sampling_step > 0');
            idleProgressShape(p);
            expect(p.progress > 0 && p.progress < 1, `progress ${p.progress}`);
            expect(p.state.sampling_steps === 150, `state.sampling_steps ${p.state.sampling_steps} (want 150)`);
            expect(p.state.job_count >= 1, `state.job_count ${p.state.job_count} while a job runs`);
            // the live preview: a base64 PNG of 1/8 the size (16x16 here), none when skip_current_image=true
            const pv = await waitFor(async () => { const q = await progressOf(base); return { ok: typeof q.current_image === 'string', value: q, seen: q }; }, 10000, 'current_image while the job runs');
            const png = b64png(pv.value.current_image, 'current_image');
            const pw = png.readUInt32BE(16), ph = png.readUInt32BE(20); // IHDR
            expect(pw === 16 && ph === 16, `current_image ${pw}x${ph} (want 16x16: 1/8 of 128x128)`);
            const skipped = expectJson(await http(base, 'GET', '/sdapi/v1/progress?skip_current_image=true'), 200);
            expect(skipped.current_image === null, `skip_current_image=true still sent an image`);
            const lat = [];
            for (let i = 0; i < 200; i++) {
                const t0 = now();
                const r = await http(base, 'GET', '/sdapi/v1/progress', undefined, { timeout: 10000 });
                lat.push(now() - t0);
                expectStatus(r, 200);
            }
            lat.sort((a, b) => a - b);
            const p50 = percentile(lat, 50), p99 = percentile(lat, 99);
            const still = await progressOf(base);
            expect(still.progress > 0, `the job stopped on its own during the latency measurement: ${short(still)}`);
            const t0 = now();
            const ir = await http(base, 'POST', '/sdapi/v1/interrupt', undefined, { timeout: 10000 });
            expectStatus(ir, 200);
            const lr = await Promise.race([longReq, sleep(10000).then(() => null)]);
            const answerMs = now() - t0;
            if (!lr) {
                const after = await progressOf(base).catch((e) => ({ state: { sampling_step: e.message } }));
                throw new CheckError(`the interrupted txt2img did not answer within 10 s of /sdapi/v1/interrupt (sampling_step ${still.state.sampling_step} just before the interrupt, ${after.state.sampling_step} 10 s later: ${after.state.sampling_step > still.state.sampling_step + 1 ? 'the job went on after the interrupt' : 'one step took that long: a loaded machine?'})`);
            }
            expect(!lr.error, () => `the interrupted txt2img got no HTTP answer: ${lr.error.message}`);
            // as A1111: steps had run, so the answer is the image of the sampler's last x0 prediction, full size
            expect(lr.status === 200 && lr.json && Array.isArray(lr.json.images) && lr.json.images.length === 1,
                `interrupted txt2img: want 200 with the partial image, got ${describe(lr)}`);
            const part = b64png(lr.json.images[0], 'interrupted images[0]');
            expect(part.readUInt32BE(16) === 128 && part.readUInt32BE(20) === 128, `the partial image is ${part.readUInt32BE(16)}x${part.readUInt32BE(20)} (want 128x128)`);
            const how = `200 with the partial image`;
            const { ms: idleMs } = await waitFor(async () => {
                const q = await progressOf(base);
                return { ok: isIdle(q), seen: q };
            }, 5000, 'progress back to idle (progress 0, state.job_count 0) after the interrupt');
            return `/progress p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms over 200 requests during the job; interrupt answered in ${secs(answerMs)} (${how}); idle ${secs(idleMs)} later`;
        } finally {
            ctrl.abort();
        }
    }, 90000);

    // ---------------------------------------------------------------------------- native API
    const nativeBody = (extra = {}) => ({ prompt: PROMPT, negative_prompt: NEGATIVE, width: 64, height: 64, steps: 4, cfg: 5,
        sampler: 'euler', seed: 42, style_image: STYLE_B64, style_mode: 'style', ...extra });

    await check('POST /v1/jobs -> 202; GET until done; result.image is the PNG, same pixels as the CLI', async () => {
        const r = await submit(base, nativeBody());
        const j = expectJson(r, 202);
        expect(typeof j.id === 'string' && j.id && ['queued', 'running'].includes(j.state), `answer ${short(j)} (want {id, state: queued})`);
        expect(Number.isInteger(j.position) && j.position >= 0, `position ${short(j.position)}`);
        const done = await waitJob(base, j.id, (x) => ['done', 'failed', 'cancelled'].includes(x.state), 60000, `job ${j.id} done`);
        expect(done.state === 'done', `job ended ${done.state}: ${short(done)}`);
        expect(done.id === j.id, `id ${done.id}`);
        for (const k of ['progress', 'created', 'started', 'finished', 'seconds', 'params', 'result'])
            expect(k in done, `job has no "${k}": ${short(done)}`);
        expect(!('error' in done) || done.error === null, `done job has an error: ${short(done.error)}`);
        expect(done.progress.step === 4 && done.progress.total === 4, `progress ${short(done.progress)} (want step 4 of 4)`);
        expect(done.params.seed === 42 && done.params.steps === 4 && done.params.width === 64, `params ${short(done.params)}`);
        const res = done.result;
        expect(res.image === `/v1/jobs/${j.id}/image.png`, `result.image ${short(res.image)} (want /v1/jobs/${j.id}/image.png)`);
        expect(res.width === 64 && res.height === 64 && res.seed === 42 && 'info' in res, `result ${short(res)} (want image, width 64, height 64, seed 42, info)`);
        const img = await http(base, 'GET', res.image);
        expectStatus(img, 200);
        expect(/image\/png/.test(img.headers.get('content-type') || ''), `Content-Type ${img.headers.get('content-type')}`);
        const chunks = pngChunks(img.buf);
        const text = chunks.filter((c) => c.type === 'tEXt' || c.type === 'iTXt').map((c) => c.data.toString('latin1'));
        expect(text.some((t) => t.startsWith('parameters\0')), 'the PNG has no "parameters" text chunk');
        await refs.t2i;
        const note = samePixels(img.buf, fs.readFileSync(REF_T2I), 'native job');
        if (t2iImage) samePixels(img.buf, t2iImage, 'native job vs /sdapi/v1/txt2img');
        return `${j.id}: ${note}, ${done.seconds}s`;
    });

    await check('GET /v1/jobs/{id}/events: progress events with increasing step, then "done"', async () => {
        // 20 steps: enough that the stream connects while the job still runs, also on a quiet machine
        const r = await submit(base, nativeBody({ steps: 20, seed: 5, style_image: undefined }));
        const j = expectJson(r, 202);
        const resp = await fetch(`${base}/v1/jobs/${j.id}/events`, { signal: AbortSignal.timeout(60000) });
        expect(resp.status === 200, `events -> ${resp.status}`);
        expect(/text\/event-stream/.test(resp.headers.get('content-type') || ''), `Content-Type ${resp.headers.get('content-type')}`);
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let text = '';
        const events = [];
        let finished = null;
        while (!finished) {
            const { value, done } = await reader.read();
            if (done) break;
            text += dec.decode(value, { stream: true });
            let k;
            while ((k = text.search(/\r?\n\r?\n/)) >= 0) {
                const block = text.slice(0, k);
                text = text.slice(k).replace(/^\r?\n\r?\n/, '');
                let ev = 'message';
                const data = [];
                for (const line of block.split(/\r?\n/)) {
                    if (line.startsWith(':')) continue;
                    const m = /^([^:]*):? ?(.*)$/.exec(line);
                    if (m[1] === 'event') ev = m[2];
                    else if (m[1] === 'data') data.push(m[2]);
                }
                if (!data.length && ev === 'message') continue;
                let d;
                try {
                    d = JSON.parse(data.join('\n'));
                } catch {
                    throw new CheckError(`event ${ev}: data is not JSON: ${short(data.join('\n'))}`);
                }
                events.push({ ev, d });
                if (['done', 'failed', 'cancelled'].includes(ev)) finished = events[events.length - 1];
            }
        }
        // the stream must end after the final event
        const tail = await Promise.race([reader.read(), sleep(5000).then(() => 'open')]);
        expect(tail !== 'open' && tail.done, `the stream did not end after the final event (got ${tail === 'open' ? 'nothing for 5 s' : short(dec.decode(tail.value))})`);
        expect(finished, `no final event; events: ${short(events, 800)}`);
        expect(finished.ev === 'done', `final event "${finished.ev}": ${short(finished.d)}`);
        expect(finished.d.id === j.id && finished.d.state === 'done' && finished.d.result, `done event data is not the done job: ${short(finished.d)}`);
        const prog = events.filter((e) => e.ev === 'progress');
        const steps = prog.map((e) => e.d.step);
        // every problem at once: the step sequence is checked even when a field is missing
        const problems = [];
        const missing = ['state', 'step', 'total', 'fraction', 'eta_seconds', 'position'].filter((k) => prog.some((e) => !(k in e.d)));
        if (missing.length) problems.push(`progress events without ${missing.map((k) => `"${k}"`).join(", ")} (e.g. ${short(prog.find((e) => missing.some((k) => !(k in e.d))).d)})`);
        const check1 = (cond, msg) => { if (!cond) problems.push(msg); };
        check1(steps.every((x, i) => i === 0 || x >= steps[i - 1]), `step goes back: ${steps.join(',')}`);
        const distinct = [...new Set(steps.filter((x) => x > 0))];
        check1(distinct.length >= 2, `want progress events for several steps, got steps ${steps.join(',')}`);
        check1(Math.max(...steps) === 20 && prog.every((e) => e.d.total === 20), `steps ${steps.join(',')} / totals ${prog.map((e) => e.d.total).join(',')} (want up to 20 of 20)`);
        check1(prog.some((e) => e.d.state === 'running'), 'no progress event in state running');
        expect(!problems.length, () => problems.join("; "));
        return `${prog.length} progress events, steps ${steps.join(',')}, then done`;
    });

    // a job that runs far longer than any check waits (150 steps), in small steps so that it stops soon
    const longBody = { prompt: PROMPT, width: 64, height: 64, steps: 150, seed: 3 };
    await check('DELETE /v1/jobs/{id} of a running job -> cancelled', async () => {
        const j = expectJson(await submit(base, longBody), 202);
        await waitJob(base, j.id, (x) => x.state === 'running' && x.progress && x.progress.step > 0, 30000, 'job running with step > 0');
        const t0 = now();
        const d = expectJson(await http(base, 'DELETE', `/v1/jobs/${j.id}`), 200);
        expect(d.id === j.id && ['cancelled', 'running'].includes(d.state), `DELETE answer ${short(d)} (want the job, state cancelled or running)`);
        const c = await waitJob(base, j.id, (x) => x.state !== 'running', 10000, 'job leaves running after DELETE');
        expect(c.state === 'cancelled', `state ${c.state} after DELETE (want cancelled): ${short(c)}`);
        expect(!c.result, `a cancelled job has a result: ${short(c.result)}`);
        const img = await http(base, 'GET', `/v1/jobs/${j.id}/image.png`);
        expectError(img, 404, 'not_found');
        return `cancelled ${secs(now() - t0)} after DELETE, at step ${c.progress && c.progress.step}`;
    });

    await check('DELETE /v1/jobs/{id} of a queued job -> cancelled at once and never runs', async () => {
        const a = expectJson(await submit(base, longBody), 202);
        const b = expectJson(await submit(base, { prompt: 'queued one', width: 64, height: 64, steps: 1 }), 202);
        expect(b.state === 'queued' && Number.isInteger(b.position) && b.position >= 0, `second job ${short(b)} (want queued with a position)`);
        const bq = await jobOf(base, b.id);
        expect(bq.state === 'queued' && Number.isInteger(bq.position), `GET of the queued job: ${short(bq)} (want state queued and its position)`);
        const d = expectJson(await http(base, 'DELETE', `/v1/jobs/${b.id}`), 200);
        expect(d.id === b.id && d.state === 'cancelled', `DELETE of the queued job answered ${short(d)} (want state cancelled at once)`);
        await http(base, 'DELETE', `/v1/jobs/${a.id}`);
        await waitJob(base, a.id, (x) => x.state === 'cancelled', 10000, 'the long job cancelled');
        await sleep(500);
        const g = await jobOf(base, b.id);
        expect(g.state === 'cancelled' && !g.started && !g.result && !(g.progress && g.progress.step > 0), `the cancelled queued job: ${short(g)} (want cancelled, never started)`);
        return `queued job ${b.id} at position ${b.position} cancelled`;
    });

    await check('GET /v1/jobs/nope -> 404 JSON error', async () => {
        expectError(await http(base, 'GET', '/v1/jobs/nope'), 404, 'not_found');
        expectError(await http(base, 'DELETE', '/v1/jobs/nope'), 404, 'not_found');
        expectError(await http(base, 'GET', '/v1/jobs/nope/events'), 404, 'not_found');
    });

    await check('queue full (--queue 4): a long job + 5 more -> 503 queue_full with Retry-After; all cancelled', async () => {
        const ids = [];
        try {
            const a = expectJson(await submit(base, longBody), 202);
            ids.push(a.id);
            await waitJob(base, a.id, (x) => x.state === 'running', 30000, 'the long job running');
            const codes = [];
            let full;
            for (let i = 0; i < 5; i++) {
                const r = await submit(base, { prompt: `filler ${i}`, width: 64, height: 64, steps: 1 });
                codes.push(r.status);
                if (r.status === 202) ids.push(r.json.id);
                else if (!full) full = r;
            }
            expect(full, `no 503 among 5 jobs behind a running one with --queue 4 (statuses ${codes.join(',')})`);
            expectError(full, 503, 'queue_full');
            const ra = full.headers.get('retry-after');
            expect(ra !== null && /^\d+$/.test(ra.trim()) && Number(ra) >= 1, `Retry-After ${JSON.stringify(ra)} (want a positive number of seconds)`);
            const accepted = codes.filter((c) => c === 202).length;
            expect(accepted === 4 || accepted === 3, `${accepted} of 5 accepted behind the running job with --queue 4 (statuses ${codes.join(',')})`);
            const info = expectJson(await http(base, 'GET', '/v1/info'), 200);
            expect(info.queue.queued === accepted && info.queue.running === 1, `/v1/info queue ${short(info.queue)} (want ${accepted} queued, 1 running)`);
            for (const id of ids.slice().reverse()) expectJson(await http(base, 'DELETE', `/v1/jobs/${id}`), 200);
            for (const id of ids) await waitJob(base, id, (x) => x.state === 'cancelled', 10000, `job ${id} cancelled`);
            const q = expectJson(await http(base, 'GET', '/v1/info'), 200).queue;
            expect(q.queued === 0 && q.running === 0, `queue after cancelling all: ${short(q)}`);
            return `statuses ${codes.join(',')}, Retry-After ${ra}`;
        } finally {
            for (const id of ids) await http(base, 'DELETE', `/v1/jobs/${id}`).catch(() => {});
        }
    });

    // ---------------------------------------------------------------------------- bad requests
    const ok = { prompt: 'x', width: 64, height: 64, steps: 1 };
    const big = fs.readFileSync(BOMB_PNG).toString('base64');
    const bombJpeg = fs.readFileSync(BOMB_JPEG).toString('base64');
    const huge = hugePng(30000, 30000).toString('base64');
    const textB64 = Buffer.from('this is plain text, not an image at all\n'.repeat(4)).toString('base64');
    const T = '/sdapi/v1/txt2img', I = '/sdapi/v1/img2img', J = '/v1/jobs';
    const bad = [
        // [what, method, path, body (string: raw), status, code, field]
        ['malformed JSON', 'POST', J, '{"prompt": ', 400, 'bad_request'],
        ['a JSON array body', 'POST', J, '[{"prompt": "x"}]', 400, 'bad_request'],
        ['no prompt', 'POST', J, { width: 64 }, 400, 'bad_request', 'prompt'],
        ['steps "ten"', 'POST', J, { ...ok, steps: 'ten' }, 400, 'bad_request', 'steps'],
        ['width 64.5', 'POST', J, { ...ok, width: 64.5 }, 400, 'bad_request', 'width'],
        ['prompt 5', 'POST', J, { ...ok, prompt: 5 }, 400, 'bad_request', 'prompt'],
        ['steps 0', 'POST', J, { ...ok, steps: 0 }, 400, 'bad_request', 'steps'],
        ['steps 1000', 'POST', J, { ...ok, steps: 1000 }, 400, 'bad_request', 'steps'],
        ['cfg -1', 'POST', J, { ...ok, cfg: -1 }, 400, 'bad_request', 'cfg'],
        ['width 100000', 'POST', J, { ...ok, width: 100000 }, 400, 'bad_request', 'width'],
        ['height 0', 'POST', J, { ...ok, height: 0 }, 400, 'bad_request', 'height'],
        ['seed "abc"', 'POST', J, { ...ok, seed: 'abc' }, 400, 'bad_request', 'seed'],
        ['karras "yes"', 'POST', J, { ...ok, karras: 'yes' }, 400, 'bad_request', 'karras'],
        ['strength 1.5', 'POST', J, { ...ok, init_image: INIT_B64, strength: 1.5 }, 400, 'bad_request', 'strength'],
        ['unknown sampler', 'POST', J, { ...ok, sampler: 'warp_drive' }, 400, 'bad_request', 'sampler'],
        ['unknown native field', 'POST', J, { ...ok, colour: 'red' }, 400, 'bad_request', 'colour'],
        ['prompt over 64 KiB', 'POST', J, { ...ok, prompt: 'a '.repeat(40000) }, 400, 'bad_request', 'prompt'],
        ['style_image bad base64', 'POST', J, { ...ok, style_image: '!!not*base64!!' }, 400, 'bad_request', 'style_image'],
        ['style_image base64 of text', 'POST', J, { ...ok, style_image: textB64 }, 400, 'bad_request', 'style_image'],
        ['style_image PNG declaring 16384x16384 (tests/regressions)', 'POST', J, { ...ok, style_image: big }, '4xx', undefined, 'style_image'],
        ['style_image PNG header declaring 30000x30000', 'POST', J, { ...ok, style_image: huge }, '4xx', undefined, 'style_image'],
        ['style_image JPEG declaring 16384x16384 (tests/regressions)', 'POST', J, { ...ok, style_image: bombJpeg }, '4xx', undefined, 'style_image'],
        ['init_image base64 of text', 'POST', J, { ...ok, init_image: textB64 }, 400, 'bad_request', 'init_image'],
        ['txt2img malformed JSON', 'POST', T, '{"prompt": ', 400, 'bad_request'],
        ['txt2img steps "ten"', 'POST', T, a1111({ steps: 'ten' }), 400, 'bad_request', 'steps'],
        ['txt2img width 64.5', 'POST', T, a1111({ width: 64.5 }), 400, 'bad_request', 'width'],
        ['txt2img steps 0', 'POST', T, a1111({ steps: 0 }), 400, 'bad_request', 'steps'],
        ['txt2img width 100000', 'POST', T, a1111({ width: 100000, steps: 1 }), 400, 'bad_request', 'width'],
        ['txt2img cfg_scale "high"', 'POST', T, a1111({ cfg_scale: 'high' }), 400, 'bad_request', 'cfg_scale'],
        ['txt2img unknown sampler_name', 'POST', T, a1111({ sampler_name: 'Warp Drive' }), 400, 'bad_request', 'sampler_name'],
        ['txt2img batch_size 17 (over 16 images)', 'POST', T, a1111({ batch_size: 17, steps: 1 }), 400, 'bad_request', /^(batch_size|n_iter)$/],
        ['txt2img ControlNet unit that is not IP-Adapter', 'POST', T,
            a1111({ steps: 1, alwayson_scripts: { controlnet: { args: [{ enabled: true, module: 'canny', model: 'control_v11p_sd15_canny [d14c016b]', image: STYLE_B64, weight: 1 }] } } }),
            400, 'bad_request', /controlnet|module|model/],
        ['txt2img IP-Adapter unit image of text', 'POST', T, a1111({ steps: 1, alwayson_scripts: { controlnet: { args: [ipUnit({ image: textB64 })] } } }), 400, 'bad_request', /image/],
        ['img2img init_images bad base64', 'POST', I, a1111({ steps: 1, init_images: ['!!not*base64!!'] }), 400, 'bad_request', /^init_images/],
        ['unknown path GET /v1/nope', 'GET', '/v1/nope', undefined, 404, 'not_found', null],
        ['unknown path GET /sdapi/v1/nope', 'GET', '/sdapi/v1/nope', undefined, 404, 'not_found', null],
        ['wrong method GET /sdapi/v1/txt2img', 'GET', T, undefined, 405, 'method_not_allowed', null],
        ['wrong method DELETE /v1/info', 'DELETE', '/v1/info', undefined, 405, 'method_not_allowed', null],
        ['wrong method PUT /v1/jobs', 'PUT', J, ok, 405, 'method_not_allowed', null],
    ];
    for (const [what, method, p, body, status, code, field] of bad) {
        await check(`bad request: ${what} -> ${status}${field ? ` naming ${field}` : ''}`, async () => {
            const r = await http(base, method, p, body);
            if (r.status === 202 && r.json && r.json.id) await http(base, 'DELETE', `/v1/jobs/${r.json.id}`);
            const e = expectError(r, status, code, field);
            return `${r.status} ${e.code}${e.field ? ` field ${e.field}` : ''}: ${short(e.message, 120)}`;
        });
    }
    await check('after the bad requests the server still answers /v1/info, with an empty queue', async () => {
        const j = expectJson(await http(base, 'GET', '/v1/info'), 200);
        expect(j.queue.queued === 0 && j.queue.running === 0, `queue ${short(j.queue)}`);
    });

    // ---------------------------------------------------------------------------- the example
    await check('examples/a1111_txt2img.sh against the server writes a PNG', async () => {
        const hasCurl = await new Promise((res) => execFile('curl', ['--version'], (e) => res(!e)));
        if (!hasCurl) return 'skipped: no curl';
        const out = path.join(TMP, 'example out.png');
        const env = { ...process.env, SD_URL: base, STEPS: '2', WIDTH: '64', HEIGHT: '64', SEED: '7' };
        await new Promise((resolve, reject) => {
            execFile('bash', [EXAMPLE, STYLE_FILE, 'a "quoted" prompt\\with a backslash', out], { env, timeout: 60000 }, (err, stdout, stderr) => {
                if (err) reject(new CheckError(`bash ${EXAMPLE} failed: ${err.message}\n${short(String(stdout) + String(stderr), 1500)}`));
                else resolve();
            });
        });
        const png = fs.readFileSync(out);
        const size = pngSize(png).join('x');
        expect(size === '64x64', `out.png is ${size}, want 64x64`);
        return `${png.length} bytes, ${size}`;
    });

    await check('main server: SIGTERM -> exit status 0', () => srv.stop(), 70000);
}

function idleProgressShape(p) {
    for (const k of ['progress', 'eta_relative', 'state', 'current_image', 'textinfo']) expect(k in p, `/sdapi/v1/progress without "${k}": ${short(p)}`);
    for (const k of ['skipped', 'interrupted', 'job', 'job_count', 'job_timestamp', 'job_no', 'sampling_step', 'sampling_steps'])
        expect(p.state && k in p.state, `/sdapi/v1/progress state without "${k}": ${short(p)}`);
    expect(p.current_image === null || (typeof p.current_image === 'string' && p.state.job_count > 0), `current_image ${short(p.current_image, 60)} (want null when idle, a base64 preview while a job runs)`);
    expect(typeof p.progress === 'number' && typeof p.eta_relative === 'number', `progress/eta_relative not numbers: ${short(p)}`);
    return p;
}

// ------------------------------------------------------------------------ limits server checks

async function limitsServerChecks() {
    const TIMEOUT = 3;
    const AUTH = 'tester:s3cret:with:colons';
    const AUTH_HDR = `Basic ${Buffer.from(AUTH).toString('base64')}`;
    const srv = new Server('limits server', ['--timeout', String(TIMEOUT), '--max-body-mb', '1', '--queue', '4', '--api-auth', AUTH]);
    let base;
    await check(`limits server (--timeout ${TIMEOUT} --max-body-mb 1 --api-auth) starts`, async () => {
        base = await srv.start();
        BASE_HEADERS.set(base, { authorization: AUTH_HDR });
        return base;
    }, 90000);
    if (!base) return;

    await check('--api-auth: 401 unauthorized without or with wrong credentials, on every endpoint and the page', async () => {
        for (const [m, p, body] of [['GET', '/v1/info'], ['GET', '/'], ['GET', '/sdapi/v1/progress'], ['POST', '/v1/jobs', { prompt: 'x', width: 64, height: 64, steps: 1 }],
            ['POST', '/sdapi/v1/txt2img', { prompt: 'x', width: 64, height: 64, steps: 1 }], ['GET', '/v1/jobs/nope']]) {
            for (const hdr of [{}, { authorization: `Basic ${Buffer.from('tester:wrong').toString('base64')}` }, { authorization: 'Bearer abc' }]) {
                const r = await http(base, m, p, body, { headers: hdr, noAuth: true });
                expectError(r, 401, 'unauthorized');
                expect(/^Basic\b/i.test(r.headers.get('www-authenticate') || ''), `${r.what}: 401 without a WWW-Authenticate: Basic header`);
            }
        }
        expectJson(await http(base, 'GET', '/v1/info'), 200);
        const page = await http(base, 'GET', '/');
        expect(page.status === 200 && /html/i.test(page.headers.get('content-type') || ''), `GET / with credentials -> ${page.status} ${page.headers.get('content-type')}`);
        return 'credentials accepted, 18 refusals';
    });
    const info = async (what) => {
        const r = await http(base, 'GET', '/v1/info', undefined, { timeout: 5000 });
        expect(r.status === 200, `${what}: /v1/info -> ${r.status}`);
        return r;
    };

    async function oversize(chunked) {
        const s = await connect(srv);
        const total = 2 * 1024 * 1024 + 123;
        const head = `POST /v1/jobs HTTP/1.1\r\nHost: ${srv.host}\r\nAuthorization: ${AUTH_HDR}\r\nContent-Type: application/json\r\n` +
            (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${total}\r\n`) + '\r\n';
        s.write(head);
        await sleep(300);
        let sent = 0;
        const piece = Buffer.alloc(64 * 1024, 'a');
        piece.write('{"prompt": "', 0);
        let first = true;
        while (sent < total && !parseResponse(s.rx) && s.closedAt === null && !s.err) {
            const n = Math.min(piece.length, total - sent);
            const data = first ? piece.subarray(0, n) : Buffer.alloc(n, 'a');
            first = false;
            s.write(chunked ? Buffer.concat([Buffer.from(n.toString(16) + '\r\n'), data, Buffer.from('\r\n')]) : data);
            sent += n;
            await new Promise((r) => setImmediate(r));
            await sleep(2);
        }
        if (chunked && sent >= total && s.closedAt === null && !s.err) s.write('0\r\n\r\n');
        const r = await rawResponse(s, 10000);
        s.destroy();
        expect(r && r.status > 0, () => `no HTTP answer to a ${chunked ? 'chunked' : 'Content-Length'} body of ${total} bytes (${sent} sent; ${r ? `got ${short(r.body.toString('latin1'))}` : 'connection closed with nothing'})`);
        const j = jsonOf(r.body);
        expect(r.status === 413 && j && j.error && j.error.code === 'payload_too_large' && j.error.status === 413,
            () => `a ${total}-byte body with --max-body-mb 1 -> ${r.status} ${short(r.body.toString('utf8'))} (want 413 payload_too_large)`);
        await info('after the oversize body');
        return `413 after ${(sent / 1048576).toFixed(2)} MiB sent`;
    }
    await check('oversize body (Content-Length 2 MiB, --max-body-mb 1) -> 413 payload_too_large', () => oversize(false));
    await check('oversize body (chunked, 2 MiB, --max-body-mb 1) -> 413 payload_too_large', () => oversize(true));

    await check(`stalled clients are closed after --timeout ${TIMEOUT} while other requests are answered`, async () => {
        const a = await connect(srv);
        a.write(`GET /v1/info HTTP/1.1\r\nHost: ${srv.host}\r\n`); // headers never finished
        const b = await connect(srv);
        b.write(`POST /v1/jobs HTTP/1.1\r\nHost: ${srv.host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro`); // body never finished
        const t0 = now();
        let answered = 0;
        while (now() - t0 < (TIMEOUT + 1) * 1000) {
            const r = await info('while two clients stall');
            expect(r.ms < 2000, `/v1/info took ${secs(r.ms)} while two clients stall`);
            answered++;
            await sleep(250);
        }
        await Promise.race([Promise.all([a.closing, b.closing]), sleep((TIMEOUT + 7) * 1000)]);
        const ta = a.closedAt, tb = b.closedAt;
        a.destroy();
        b.destroy();
        expect(ta !== null, `a client that stopped in the middle of its headers is still connected ${TIMEOUT + 8} s later`);
        expect(tb !== null, `a client that stopped in the middle of its body is still connected ${TIMEOUT + 8} s later`);
        expect(ta - t0 >= (TIMEOUT - 1) * 1000 && tb - t0 >= (TIMEOUT - 1) * 1000, `closed before --timeout: after ${secs(ta - t0)} / ${secs(tb - t0)}`);
        return `closed after ${secs(ta - t0)} and ${secs(tb - t0)}; ${answered} /v1/info answered meanwhile`;
    }, 40000);

    await check('a client that declares Content-Length 1000, sends 10 bytes and closes', async () => {
        for (const p of ['/v1/jobs', '/sdapi/v1/txt2img']) {
            const s = await connect(srv);
            s.write(`POST ${p} HTTP/1.1\r\nHost: ${srv.host}\r\nAuthorization: ${AUTH_HDR}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt":`);
            s.end();
            await sleep(200);
            s.destroy();
        }
        await sleep(300);
        const j = (await info('after the truncated bodies')).json;
        expect(j.queue.queued === 0 && j.queue.running === 0, `a truncated body started a job: queue ${short(j.queue)}`);
        const p = await progressOf(base);
        expect(isIdle(p), `progress not idle: ${short(p)}`);
    });

    await check(`20 connections that send nothing: others answered, all 20 closed after --timeout ${TIMEOUT}`, async () => {
        const socks = await Promise.all(Array.from({ length: 20 }, () => connect(srv)));
        const t0 = now();
        for (let i = 0; i < 3; i++) {
            const r = await info('with 20 idle connections open');
            expect(r.ms < 2000, `/v1/info took ${secs(r.ms)} with 20 idle connections open`);
        }
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', { prompt: 'x', steps: 1, width: 64, height: 64, seed: 1 });
        expectJson(r, 200);
        await Promise.race([Promise.all(socks.map((s) => s.closing)), sleep((TIMEOUT + 7) * 1000)]);
        const open = socks.filter((s) => s.closedAt === null).length;
        const last = Math.max(...socks.map((s) => s.closedAt || 0)) - t0;
        socks.forEach((s) => s.destroy());
        expect(open === 0, `${open} of 20 silent connections still open ${TIMEOUT + 7} s later`);
        return `all closed within ${secs(last)}; a txt2img meanwhile took ${secs(r.ms)}`;
    }, 40000);

    await check(`answers carry Keep-Alive: timeout=${TIMEOUT}; the server keeps that promise; fetch after an idle gap of --timeout`, async () => {
        const s = await connect(srv);
        const ask = (p, auth = true) => s.write(`GET ${p} HTTP/1.1\r\nHost: ${srv.host}\r\n${auth ? `Authorization: ${AUTH_HDR}\r\n` : ''}\r\n`);
        const answers = [];
        for (const [p, auth, status] of [['/v1/info', true, 200], ['/v1/nope', true, 404], ['/v1/info', false, 401]]) {
            s.rx = Buffer.alloc(0);
            ask(p, auth);
            const r = await rawResponse(s, 5000);
            expect(r && r.status === status, () => `GET ${p} on a kept-alive connection -> ${r ? r.status : 'nothing'} (want ${status})`);
            expect(r.headers['keep-alive'] === `timeout=${TIMEOUT}`, () => `GET ${p} -> ${status} with Keep-Alive ${JSON.stringify(r.headers['keep-alive'])} (want "timeout=${TIMEOUT}")`);
            answers.push(status);
        }
        // a client that honours the hint with a 1 s margin (undici's) reuses the connection this late
        s.rx = Buffer.alloc(0);
        await sleep((TIMEOUT - 1) * 1000);
        expect(s.closedAt === null, `the server closed a connection idle for ${TIMEOUT - 1} s, before the timeout=${TIMEOUT} it announced`);
        ask('/v1/info');
        const late = await rawResponse(s, 5000);
        expect(late && late.status === 200, () => `a request ${TIMEOUT - 1} s into the idle time -> ${late ? late.status : 'nothing'} (want 200)`);
        const tIdle = now();
        await Promise.race([s.closing, sleep((TIMEOUT + 5) * 1000)]);
        const closedAfter = s.closedAt === null ? null : s.closedAt - tIdle;
        s.destroy();
        expect(closedAfter !== null, `a kept-alive connection still open ${TIMEOUT + 5} s after its last answer`);
        expect(closedAfter >= (TIMEOUT - 1) * 1000, `a kept-alive connection closed ${secs(closedAfter)} after its last answer (announced: ${TIMEOUT} s)`);
        // Node's fetch pools connections: after exactly --timeout of quiet it must not pick a dying one
        for (let i = 0; i < 3; i++) {
            expectJson(await http(base, 'GET', '/v1/info'), 200);
            await sleep(TIMEOUT * 1000);
        }
        expectJson(await http(base, 'GET', '/v1/info'), 200);
        return `${answers.join('/')} with the header; closed ${secs(closedAfter)} after the last answer; 4 fetches ${TIMEOUT} s apart answered`;
    }, 60000);

    await check(`a synchronous txt2img waiting longer than --timeout ${TIMEOUT} (queued behind a job) still gets its answer`, async () => {
        const a = expectJson(await submit(base, { prompt: PROMPT, width: 64, height: 64, steps: 150, seed: 8 }), 202);
        try {
            await waitJob(base, a.id, (x) => x.state === 'running', 30000, 'the long job running');
            const sync = http(base, 'POST', '/sdapi/v1/txt2img', { prompt: PROMPT, steps: 1, width: 64, height: 64, seed: 9 }, { timeout: 90000 }).catch((e) => ({ error: e }));
            await sleep((TIMEOUT + 1.5) * 1000);
            expectJson(await http(base, 'DELETE', `/v1/jobs/${a.id}`), 200);
            const r = await sync;
            expect(!r.error, () => `the waiting txt2img got no answer: ${r.error.message}`);
            const j = expectJson(r, 200);
            expect(Array.isArray(j.images) && j.images.length === 1, `images ${short(j.images)}`);
            b64png(j.images[0], 'images[0]');
            return `answered after ${secs(r.ms)}`;
        } finally {
            await http(base, 'DELETE', `/v1/jobs/${a.id}`).catch(() => {});
        }
    });

    await check('a txt2img client that disconnects mid-job cancels its job; the next job runs normally', async () => {
        const s = await connect(srv);
        const body = JSON.stringify({ prompt: PROMPT, steps: 150, width: 64, height: 64, seed: 11, sampler_name: 'Euler' });
        s.write(`POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: ${srv.host}\r\nAuthorization: ${AUTH_HDR}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        const { value: p } = await waitFor(async () => {
            const p = await progressOf(base);
            return { ok: p.progress > 0 && p.state.sampling_step > 0, value: p, seen: p };
        }, 30000, 'progress > 0 after the raw txt2img');
        s.destroy();
        const { ms } = await waitFor(async () => {
            const q = await progressOf(base);
            return { ok: isIdle(q), seen: q };
        }, 8000, 'progress back to idle after the client disconnected');
        const stepAtCut = p.state.sampling_step;
        const r = await http(base, 'POST', '/sdapi/v1/txt2img', { prompt: 'after', steps: 2, width: 64, height: 64, seed: 12 }, { timeout: 30000 });
        const j = expectJson(r, 200);
        expect(Array.isArray(j.images) && j.images.length === 1, `images ${short(j.images)}`);
        b64png(j.images[0], 'images[0]');
        expect(r.ms < 20000, `the next job took ${secs(r.ms)}: was the cancelled one still running?`);
        return `idle ${secs(ms)} after the disconnect (cut at step ${stepAtCut}); next job ${secs(r.ms)}`;
    }, 60000);

    await check('limits server: SIGTERM -> exit status 0', () => srv.stop(), 70000);
}

// ---------------------------------------------------------------------------------------------- run

async function main() {
    console.log(`api_test: ${CLI} serve on ${MODEL} (temp ${TMP})`);
    // The CLI references run while the first server loads.
    const refs = {};
    refs.t2i = runCli(['generate', ...GEN_COMMON, '--out', REF_T2I]);
    refs.i2i = refs.t2i.then(() => runCli(['generate', ...GEN_COMMON, '--init-image', INIT_FILE, '--strength', '0.5', '--out', REF_I2I]));
    refs.t2i.catch(() => {});
    refs.i2i.catch(() => {});
    await mainServerChecks(refs);
    await limitsServerChecks();
    fs.rmSync(TMP, { recursive: true, force: true });
    const total = secs(Date.now() - T_START);
    if (failures.length) {
        console.log(`\napi_test: ${failures.length} check(s) FAILED in ${total}:`);
        for (const f of failures) console.log(`  - ${f.split('\n')[0]}`);
        process.exit(1);
    }
    console.log(`\napi_test: all checks passed in ${total}${skipped ? ` (${skipped} skipped by --only)` : ''}`);
    process.exit(0);
}

main().catch((e) => {
    console.log(`api_test: internal error: ${e.stack || e}`);
    process.exit(1);
});
