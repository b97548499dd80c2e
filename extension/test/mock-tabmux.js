// A mock tabmux instance speaking docs/PROTOCOL.md, for driving the real
// extension in Chromium before (and besides) the Rust bridge. Node built-ins only.
// It does the authenticated hello with `secret` (the one launch() writes into the
// extension's config.json); a mock with another secret plays another user's tabmux:
// it records every hello it gets and what the extension sent it afterwards.
//
//   const m = await startMockTabmux({ port: 8765, name: 'Cursor' });
//   await m.connected;                         // the extension said hello
//   const r = await m.request('tabs.create', {url: 'about:blank'});  // {result} | {error}
//   m.events                                   // events from the extension
//   m.dropConnection(); await m.stop();
//
// Run alone: node test/mock-tabmux.js [port] [name]

import http from 'node:http';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { acceptUpgrade } from './ws-lite.js';
import { TEST_SECRET, challenge, helloValid, newNonce, tabmuxProof } from './tabmux-auth.js';

export const EXTENSION_ORIGIN = 'chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd';

export async function startMockTabmux({ port, name = 'Mock', instanceId = crypto.randomUUID(), leaseMs = 60_000, graceMs = 5_000, protocol = 1, secret = TEST_SECRET, log = () => {} } = {}) {
  const m = new EventEmitter();
  Object.assign(m, { port, name, instanceId, leaseMs, graceMs, protocol, secret, events: [], hellos: [], refused: 0, afterRefusal: [], probes: 0, peer: null, frames: 0 });
  let nextId = 1;
  const sockets = new Set();
  const pending = new Map();
  let resolveConnected;
  m.connected = new Promise((r) => { resolveConnected = r; });

  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (req.url === '/tabmux' && req.method === 'GET') {
      m.probes++;
      if (origin && origin !== EXTENSION_ORIGIN) {
        res.writeHead(403, { Connection: 'close' }).end();
        return;
      }
      const body = JSON.stringify({ tabmux: 1, protocol: m.protocol });
      res.writeHead(200, { 'Content-Type': 'application/json', Connection: 'close' }).end(body);
      return;
    }
    res.writeHead(404, { Connection: 'close' }).end();
  });
  server.on('upgrade', (req, socket) => {
    if (req.url !== '/extension') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    m.lastOrigin = req.headers.origin;
    const peer = acceptUpgrade(req, socket, { allowOrigin: EXTENSION_ORIGIN });
    if (!peer) return;
    sockets.add(peer);
    const nonce = newNonce();
    let authenticated = false;
    let refused = false;
    peer.send(JSON.stringify(challenge(nonce, m.protocol)));
    peer.on('message', (text) => {
      m.frames++;
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (refused) {
        m.afterRefusal.push(msg);
        return;
      }
      if (msg.method === 'hello') {
        m.hellos.push(msg.params);
        if (msg.params.protocol !== m.protocol) {
          peer.send(JSON.stringify({ id: msg.id, error: { code: 'PROTOCOL_MISMATCH', message: `the extension speaks protocol ${msg.params.protocol}, this tabmux ${m.protocol}: update the extension` } }));
          peer.close(4001, 'protocol mismatch');
          return;
        }
        if (!helloValid(msg.params, m.secret, nonce, m.port)) {
          // Another user's tabmux: it cannot check the proof, so it plays along with
          // a made-up answer and sees whether the extension serves it anyway.
          m.refused++;
          refused = true;
          const proof = tabmuxProof(m.secret, nonce, msg.params.nonce, m.port, m.instanceId);
          peer.send(JSON.stringify({ id: msg.id, result: { protocol: m.protocol, proof, instanceId: m.instanceId, name: m.name, pid: process.pid, version: '0.0.0-mock', leaseMs: m.leaseMs, graceMs: m.graceMs } }));
          setTimeout(() => peer.open && peer.send(JSON.stringify({ id: 1, method: 'tabs.list', params: { all: true } })), 50);
          return;
        }
        if (m.peer && m.peer !== peer && m.peer.open) m.peer.close(1000, 'replaced');
        m.peer = peer;
        authenticated = true;
        const proof = tabmuxProof(m.secret, nonce, msg.params.nonce, m.port, m.instanceId);
        peer.send(JSON.stringify({ id: msg.id, result: { protocol: m.protocol, proof, instanceId: m.instanceId, name: m.name, pid: process.pid, version: '0.0.0-mock', leaseMs: m.leaseMs, graceMs: m.graceMs } }));
        m.emit('hello', msg.params);
        resolveConnected(msg.params);
        return;
      }
      if (msg.method === 'ping') {
        peer.send(JSON.stringify({ id: msg.id, result: {} }));
        return;
      }
      if (msg.event) {
        m.events.push(msg);
        m.emit('event', msg);
        if (msg.event !== 'cdp.event') log(`event ${msg.event} ${JSON.stringify(msg.params)}`);
        return;
      }
      const p = pending.get(msg.id);
      if (p) {
        pending.delete(msg.id);
        p(msg);
      }
    });
    peer.on('close', (code) => {
      if (!authenticated) return;
      m.emit('disconnected', code);
      for (const [id, p] of pending) {
        pending.delete(id);
        p({ id, error: { code: 'TIMEOUT', message: 'connection closed' } });
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });

  /** A request to the extension; resolves with the reply frame ({result} or {error}). */
  m.request = (method, params = {}, { timeoutMs = 30_000, trace } = {}) =>
    new Promise((resolve) => {
      if (!m.peer || !m.peer.open) {
        resolve({ error: { code: 'TIMEOUT', message: 'not connected' } });
        return;
      }
      const id = nextId++;
      const t = setTimeout(() => {
        pending.delete(id);
        resolve({ id, error: { code: 'TIMEOUT', message: `${method}: no reply in ${timeoutMs} ms` } });
      }, timeoutMs);
      pending.set(id, (msg) => {
        clearTimeout(t);
        resolve(msg);
      });
      m.peer.send(JSON.stringify({ id, method, params, trace: trace || `mock-${id}` }));
    });
  m.sendRaw = (text) => m.peer && m.peer.send(text);
  m.sendEvent = (event, params) => {
    if (event === 'instance.updated' && params && typeof params.name === 'string') m.name = params.name;
    return m.peer && m.peer.send(JSON.stringify({ event, params }));
  };
  m.waitEvent = (pred, timeoutMs = 10_000) =>
    new Promise((resolve, reject) => {
      const hit = m.events.find(pred);
      if (hit) return resolve(hit);
      const t = setTimeout(() => {
        m.off('event', on);
        reject(new Error('event did not come'));
      }, timeoutMs);
      const on = (e) => {
        if (pred(e)) {
          clearTimeout(t);
          m.off('event', on);
          resolve(e);
        }
      };
      m.on('event', on);
    });
  m.nextHello = () => new Promise((r) => m.once('hello', r));
  /** Drop the socket like a crash (no close frame). */
  m.dropConnection = () => m.peer && m.peer.destroy();
  m.stop = () =>
    new Promise((resolve) => {
      for (const p of sockets) p.destroy();
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
  return m;
}

// Run by hand only (node --test also loads every file under test/).
if (import.meta.url === `file://${process.argv[1]}` && !process.env.NODE_TEST_CONTEXT) {
  const port = Number(process.argv[2] || 8765);
  const m = await startMockTabmux({ port, name: process.argv[3] || 'Mock', log: (l) => console.log(l) });
  console.log(`mock tabmux ${m.instanceId} on ${port}`);
  m.on('hello', (h) => console.log('hello', JSON.stringify(h)));
}
