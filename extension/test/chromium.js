// Launch headless Chromium with the extension and talk to it over the
// browser-level DevTools protocol: find the extension's service worker,
// evaluate in it, read its console, stop it. Used by e2e.chromium.test.js.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectWs } from './ws-lite.js';
import { TEST_SECRET } from './tabmux-auth.js';

export const EXTENSION_ID = 'knlmfncphidfkjhbiidejbkkebcfedhd';
export const EXTENSION_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Cdp {
  constructor(peer) {
    this.peer = peer;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Set();
    peer.on('message', (text) => {
      const m = JSON.parse(text);
      if (m.id && this.pending.has(m.id)) {
        const { resolve, reject } = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) reject(new Error(`${m.error.message} (${m.error.code})`));
        else resolve(m.result);
      } else if (m.method) {
        for (const l of this.listeners) l(m);
      }
    });
  }

  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.peer.send(JSON.stringify(msg));
    });
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

/**
 * An installed copy of the extension, as `tabmux extension install` writes it: the
 * repository's files (without its tests) and config.json with `secret`.
 */
export function installCopy(dir, secret) {
  fs.cpSync(EXTENSION_DIR, dir, { recursive: true, filter: (src) => !src.startsWith(path.join(EXTENSION_DIR, 'test')) && path.basename(src) !== 'config.json' });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ secret }), { mode: 0o600 });
  return dir;
}

export async function launch({ extraArgs = [], secret = TEST_SECRET } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tabmux-chromium-'));
  const ext = installCopy(path.join(dir, 'extension'), secret);
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--silent-debugger-extension-api', `--user-data-dir=${dir}`,
    `--load-extension=${ext}`, `--disable-extensions-except=${ext}`, '--remote-debugging-port=0',
    ...extraArgs, 'about:blank',
  ];
  const proc = spawn(CHROMIUM, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; if (stderr.length > 100_000) stderr = stderr.slice(-50_000); });
  const portFile = path.join(dir, 'DevToolsActivePort');
  let lines = null;
  for (let i = 0; i < 200 && !lines; i++) {
    await sleep(100);
    if (fs.existsSync(portFile)) {
      const l = fs.readFileSync(portFile, 'utf8').split('\n');
      if (l.length >= 2 && l[1]) lines = l;
    }
  }
  if (!lines) {
    kill(proc);
    throw new Error(`chromium did not start: ${stderr.slice(-2000)}`);
  }
  const peer = await connectWs(`ws://127.0.0.1:${lines[0]}${lines[1]}`);
  const cdp = new Cdp(peer);
  const b = { proc, dir, cdp, stderr: () => stderr, logs: [] };
  b.close = async () => {
    try {
      await Promise.race([cdp.send('Browser.close'), sleep(2000)]);
    } catch {
      /* gone */
    }
    await sleep(300);
    kill(proc);
    peer.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return b;
}

function kill(proc) {
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** Attach to the extension's service worker; returns {sessionId, evaluate(expr)}. Console lines go to b.logs. */
export async function worker(b, { timeoutMs = 10_000 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { targetInfos } = await b.cdp.send('Target.getTargets');
    const t = targetInfos.find((x) => x.type === 'service_worker' && x.url.startsWith(`chrome-extension://${EXTENSION_ID}/`));
    if (t) {
      const { sessionId } = await b.cdp.send('Target.attachToTarget', { targetId: t.targetId, flatten: true });
      if (b.offConsole) b.offConsole();
      b.offConsole = b.cdp.on((m) => {
        if (m.sessionId === sessionId && m.method === 'Runtime.consoleAPICalled') {
          b.logs.push(m.params.args.map((a) => (a.value !== undefined ? a.value : a.description)).join(' '));
        }
      });
      await b.cdp.send('Runtime.enable', {}, sessionId);
      const evaluate = async (expression) => {
        const r = await b.cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
        if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text}`);
        return r.result.value;
      };
      // The module may not have run yet: wait for its test handle.
      for (let i = 0; i < 100; i++) {
        if ((await evaluate('typeof tabmux')) === 'object' && (await evaluate('tabmux.ready.then(() => true)'))) break;
        await sleep(50);
      }
      return { targetId: t.targetId, sessionId, evaluate };
    }
    if (Date.now() > end) throw new Error('no extension service worker');
    await sleep(100);
  }
}

/**
 * Stop every service worker through an existing page, without any tab event
 * that would wake the extension's worker again: only its alarm can.
 */
export async function stopWorkersQuietly(b) {
  const { targetInfos } = await b.cdp.send('Target.getTargets');
  const page = targetInfos.find((t) => t.type === 'page' && !t.url.startsWith('chrome-extension://'));
  const { sessionId } = await b.cdp.send('Target.attachToTarget', { targetId: page.targetId, flatten: true });
  await b.cdp.send('ServiceWorker.enable', {}, sessionId);
  await b.cdp.send('ServiceWorker.stopAllWorkers', {}, sessionId);
  await b.cdp.send('Target.detachFromTarget', { sessionId });
}

/** Stop every service worker (the extension's too), as Chromium does after 30 s idle. */
export async function stopWorkers(b) {
  const { targetId } = await b.cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await b.cdp.send('Target.attachToTarget', { targetId, flatten: true });
  await b.cdp.send('ServiceWorker.enable', {}, sessionId);
  await b.cdp.send('ServiceWorker.stopAllWorkers', {}, sessionId);
  await b.cdp.send('Target.closeTarget', { targetId });
}

export async function waitFor(pred, { timeoutMs = 10_000, stepMs = 50 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(stepMs);
  }
}

export { sleep };
