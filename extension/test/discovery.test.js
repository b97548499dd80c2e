import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Discovery, httpProbe, validRange } from '../lib/discovery.js';
import { FakeClock } from './helpers.js';

/** A fake network: ports → instance; probe and connect take time on the fake clock. */
function setup({ probeMs = 30, connectMs = 50, range = { from: 8765, to: 8775 } } = {}) {
  const clock = new FakeClock();
  const net = new Map();
  const inflight = new Map();
  const log = { probes: [], connects: [], gone: [], mismatch: [], foreign: [], keepAlive: 0, maxConcurrent: 0 };
  const enter = (p) => {
    const n = (inflight.get(p) || 0) + 1;
    inflight.set(p, n);
    log.maxConcurrent = Math.max(log.maxConcurrent, n);
  };
  const leave = (p) => inflight.set(p, inflight.get(p) - 1);
  const wait = (ms) => new Promise((r) => clock.setTimeout(r, ms));
  const connectResult = new Map();
  const d = new Discovery({
    clock,
    range,
    probe: async (port) => {
      enter(port);
      log.probes.push({ port, at: clock.now() });
      await wait(probeMs);
      leave(port);
      return net.get(port) || null;
    },
    connect: async (port, body) => {
      enter(port);
      log.connects.push({ port, at: clock.now(), instanceId: body.instanceId });
      await wait(connectMs);
      leave(port);
      const r = connectResult.get(port);
      return r ? r(body) : { ok: true, instanceId: body.instanceId };
    },
    onGone: (port, id) => log.gone.push({ port, id }),
    onMismatch: (port, body) => log.mismatch.push({ port, id: body.instanceId }),
    onForeign: (port, message) => log.foreign.push({ port, message }),
    keepAlive: () => { log.keepAlive++; },
  });
  return { clock, net, log, d, connectResult };
}

const inst = (id, extra = {}) => ({ tabmux: 1, protocol: 1, instanceId: id, name: 'X', ...extra });

test('every port of the range is probed, never two attempts at one port at once', async () => {
  const h = setup({ probeMs: 900, connectMs: 700 });
  h.net.set(8766, inst('a'));
  h.d.start();
  await h.clock.advance(20);
  assert.deepEqual([...new Set(h.log.probes.map((p) => p.port))].sort(), Array.from({ length: 11 }, (_, i) => 8765 + i));
  await h.clock.advance(10_000);
  assert.equal(h.log.maxConcurrent, 1);
  assert.equal(h.log.connects.length, 1, 'one connection to the one instance');
  h.d.stop();
});

test('a new instance is connected within 2 s, also after 10 minutes with nobody there', async () => {
  const h = setup();
  h.d.start();
  await h.clock.advance(10 * 60_000);
  assert.equal(h.log.connects.length, 0);
  const probes10min = h.log.probes.length;
  assert.ok(probes10min < 11 * 600 * 1.6, `backoff keeps probing modest (${probes10min} probes in 10 min)`);
  assert.ok(h.log.keepAlive >= 600 / 5 - 1, 'the worker is kept awake');
  const born = h.clock.now();
  h.net.set(8770, inst('new'));
  await h.clock.advance(2_000);
  assert.equal(h.log.connects.length, 1);
  assert.ok(h.log.connects[0].at - born <= 1_000, `connect started ${h.log.connects[0].at - born} ms after the instance appeared`);
  h.d.stop();
});

test('a dead port backs off 250, 500, 700 ms', async () => {
  const h = setup({ probeMs: 0, range: { from: 9000, to: 9000 } });
  h.d.start();
  await h.clock.advance(5_000);
  const at = h.log.probes.map((p) => p.at - h.log.probes[0].at);
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  assert.ok(gaps[0] >= 250 && gaps[0] < 500, `first gap ${gaps[0]}`);
  assert.ok(gaps[1] >= 500 && gaps[1] < 750, `second gap ${gaps[1]}`);
  for (const g of gaps.slice(2)) assert.ok(g >= 700 && g < 950, `later gap ${g}`);
});

test('failed handshakes back off; once the port was seen empty its next tabmux is tried at once', async () => {
  const h = setup({ range: { from: 8765, to: 8765 } });
  h.net.set(8765, inst('a'));
  h.connectResult.set(8765, () => ({ ok: false }));
  h.d.start();
  await h.clock.advance(10_000);
  const n = h.log.connects.length;
  assert.ok(n >= 3 && n <= 6, `${n} attempts in 10 s`);
  const gaps = h.log.connects.slice(1).map((c, i) => c.at - h.log.connects[i].at);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] >= gaps[i - 1], 'growing');
  h.net.delete(8765);
  await h.clock.advance(2_500);
  h.net.set(8765, inst('b'));
  h.connectResult.delete(8765);
  const t = h.clock.now();
  await h.clock.advance(1_500);
  const last = h.log.connects[h.log.connects.length - 1];
  assert.equal(last.instanceId, 'b');
  assert.ok(last.at - t <= 1_300);
  h.d.stop();
});

test('a port that serves another instance after a reconnect: the old instance is gone', async () => {
  const h = setup({ range: { from: 8765, to: 8765 } });
  h.net.set(8765, inst('old'));
  h.d.start();
  await h.clock.advance(1_000);
  assert.equal(h.log.connects.length, 1);
  await h.clock.advance(10_000);
  h.net.set(8765, inst('new'));
  h.d.disconnected(8765, 'old', { livedMs: 11_000 });
  await h.clock.advance(1_000);
  assert.deepEqual(h.log.gone, [{ port: 8765, id: 'old' }]);
  assert.equal(h.log.connects.length, 2);
  assert.equal(h.log.connects[1].instanceId, 'new');
  h.d.stop();
});

test('a tabmux that does not know our secret: reported once, tried every 30 s, not spammed', async () => {
  const h = setup({ range: { from: 8765, to: 8765 } });
  h.net.set(8765, inst('stranger'));
  h.connectResult.set(8765, () => ({ ok: false, foreign: true, message: 'did not prove the secret' }));
  h.d.start();
  await h.clock.advance(5 * 60_000);
  const n = h.log.connects.length;
  assert.ok(n >= 9 && n <= 11, `${n} attempts in 5 min`);
  assert.equal(h.log.foreign.length, 1, 'reported once');
  assert.equal(h.d.view()[0].foreign, true);
  // It leaves; our own tabmux takes the port: connected at once.
  h.net.delete(8765);
  await h.clock.advance(2_500);
  h.net.set(8765, inst('mine'));
  h.connectResult.delete(8765);
  await h.clock.advance(1_500);
  assert.equal(h.log.connects[h.log.connects.length - 1].instanceId, 'mine');
  assert.equal(h.d.view()[0].foreign, false);
  h.d.stop();
});

test('a closed connection is reconnected at once; a flapping one backs off', async () => {
  const h = setup({ range: { from: 8765, to: 8765 } });
  h.net.set(8765, inst('a'));
  h.d.start();
  await h.clock.advance(1_000);
  assert.equal(h.log.connects.length, 1);
  await h.clock.advance(10_000);
  h.d.disconnected(8765, 'a', { livedMs: 10_000 });
  await h.clock.advance(400);
  assert.equal(h.log.connects.length, 2);
  for (let i = 0; i < 4; i++) {
    h.d.disconnected(8765, 'a', { livedMs: 10 });
    await h.clock.advance(400);
  }
  assert.ok(h.log.connects.length < 6, `${h.log.connects.length} connects`);
  h.d.stop();
});

test('protocol mismatch: no connection while the probe says so; a hello mismatch is retried slowly', async () => {
  const h = setup({ range: { from: 8765, to: 8765 } });
  h.net.set(8765, inst('v2', { protocol: 2 }));
  h.d.start();
  await h.clock.advance(10_000);
  assert.equal(h.log.connects.length, 0);
  assert.equal(h.log.mismatch.length, 1);
  h.net.set(8765, inst('v1'));
  await h.clock.advance(3_000);
  assert.equal(h.log.connects.length, 1);
  // mismatch seen only in the hello
  const h2 = setup({ range: { from: 8765, to: 8765 } });
  h2.net.set(8765, inst('x'));
  h2.connectResult.set(8765, () => ({ ok: false, mismatch: true }));
  h2.d.start();
  await h2.clock.advance(10_000);
  assert.equal(h2.log.connects.length, 1);
  await h2.clock.advance(30_000);
  assert.equal(h2.log.connects.length, 2);
  h.d.stop();
  h2.d.stop();
});

test('setRange moves discovery to the new ports', async () => {
  const h = setup({ range: { from: 8765, to: 8766 } });
  h.d.start();
  await h.clock.advance(100);
  h.net.set(9100, inst('z'));
  h.d.setRange(9100, 9101);
  await h.clock.advance(500);
  assert.equal(h.log.connects.length, 1);
  assert.throws(() => h.d.setRange(1, 70000));
  assert.equal(validRange(8765, 8765 + 63), true);
  assert.equal(validRange(8765, 8765 + 64), false);
  h.d.stop();
});

test('httpProbe: only a tabmux answer counts; errors and timeouts are null', async () => {
  const res = (status, body) => ({ status, text: async () => (typeof body === 'string' ? body : JSON.stringify(body)) });
  assert.deepEqual(await httpProbe(async () => res(200, inst('a')), 1), { tabmux: 1, protocol: 1 }, 'nothing else is taken from a probe');
  assert.deepEqual(await httpProbe(async () => res(200, { tabmux: 1, protocol: 1 }), 1), { tabmux: 1, protocol: 1 });
  assert.equal(await httpProbe(async () => res(200, { hello: 1 }), 1), null);
  assert.equal(await httpProbe(async () => res(200, 'not json'), 1), null);
  assert.equal(await httpProbe(async () => res(404, inst('a')), 1), null);
  assert.equal(await httpProbe(async () => { throw new TypeError('Failed to fetch'); }, 1), null);
  let aborted = false;
  const hang = (url, { signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => { aborted = true; reject(new Error('aborted')); }));
  assert.equal(await httpProbe(hang, 1, { timeoutMs: 20 }), null);
  assert.equal(aborted, true);
  let seenUrl;
  await httpProbe(async (u) => { seenUrl = u; return res(200, inst('a')); }, 8767);
  assert.equal(seenUrl, 'http://127.0.0.1:8767/tabmux');
});
