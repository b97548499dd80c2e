import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, PING_MS, SILENCE_MS } from '../lib/connection.js';
import { FakeClock, flush } from './helpers.js';
import { FakeWebSocket } from './fakes.js';
import { TEST_SECRET, challenge, helloValid, newNonce, tabmuxProof } from './tabmux-auth.js';

/** A connection to a tabmux the test plays: challenge, then it checks the proof and proves back. */
function open({ helloResult, helloError, secret = TEST_SECRET, tabmuxSecret = TEST_SECRET, protocol = 1, answer = null, nonce = newNonce() } = {}) {
  const clock = new FakeClock();
  const got = { requests: [], events: [], closes: [], hellos: [] };
  const conn = new Connection({
    port: 8765,
    WebSocket: FakeWebSocket,
    clock,
    secret,
    hello: { protocol: 1, extensionVersion: '0.1.0', browser: 'Chrome/1', profileId: 'p' },
    onRequest: (c, m) => got.requests.push(m),
    onEvent: (c, m) => got.events.push(m),
    onClose: (c, info) => got.closes.push(info),
  });
  const p = conn.open();
  const sock = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  sock.peer = (msg, s) => {
    if (msg.method !== 'hello') return;
    got.hellos.push(msg.params);
    if (answer) return s.receive({ id: msg.id, result: answer(msg.params) });
    if (helloError) return s.receive({ id: msg.id, error: helloError });
    if (!helloValid(msg.params, tabmuxSecret, nonce, 8765)) return s.receive({ id: msg.id, error: { code: 'UNAUTHORIZED', message: 'no' } });
    const result = helloResult || { protocol: 1, instanceId: 'I', name: 'Cursor', leaseMs: 60000, graceMs: 5000 };
    s.receive({ id: msg.id, result: { proof: tabmuxProof(tabmuxSecret, nonce, msg.params.nonce, 8765, result.instanceId), ...result } });
  };
  sock.accept();
  sock.receive(challenge(nonce, protocol));
  return { clock, conn, sock, p, got, nonce };
}

test('hello answers the challenge with a proof; then the connection is open', async () => {
  const { conn, sock, p } = open();
  const r = await p;
  assert.equal(r.ok, true);
  assert.equal(sock.messages()[0].method, 'hello');
  assert.equal(sock.messages()[0].id, 1);
  assert.match(sock.messages()[0].params.proof, /^[0-9a-f]{64}$/);
  assert.equal(conn.instanceId, 'I');
  assert.equal(conn.info.proof, undefined, 'the proof is not kept');
  assert.equal(conn.isOpen(), true);
  conn.close();
});

test('another secret on either side: not connected, marked foreign', async () => {
  const theirs = 'cd'.repeat(32);
  const a = open({ tabmuxSecret: theirs }); // tabmux refuses our proof
  const ra = await a.p;
  assert.equal(ra.ok, false);
  assert.equal(ra.foreign, true);
  assert.equal(a.conn.state, 'closed');
  // A tabmux that accepts anything but cannot prove the secret back.
  const b = open({ answer: () => ({ protocol: 1, instanceId: 'I', proof: '00'.repeat(32) }) });
  // A proof replayed from another connection (another challenge): wrong here.
  const c = open({ answer: (h) => ({ protocol: 1, instanceId: 'I', proof: tabmuxProof(TEST_SECRET, newNonce(), h.nonce, 8765, 'I') }) });
  for (const x of [b, c]) {
    const r = await x.p;
    assert.equal(r.ok, false);
    assert.equal(r.foreign, true);
    assert.equal(x.conn.state, 'closed');
    assert.equal(x.sock.readyState, 3);
  }
});

test('a tabmux proof for another port or instance id is refused', async () => {
  for (const [port, id] of [[8766, 'I'], [8765, 'J']]) {
    const nonce = newNonce();
    const x = open({ nonce, answer: (h) => ({ protocol: 1, instanceId: 'I', proof: tabmuxProof(TEST_SECRET, nonce, h.nonce, port, id) }) });
    const r = await x.p;
    assert.equal(r.foreign, true, `port ${port} id ${id}`);
  }
  // The right one passes.
  const nonce = newNonce();
  const ok = open({ nonce, answer: (h) => ({ protocol: 1, instanceId: 'I', proof: tabmuxProof(TEST_SECRET, nonce, h.nonce, 8765, 'I') }) });
  assert.equal((await ok.p).ok, true);
  ok.conn.close();
});

test('PROTOCOL_MISMATCH in the hello: not connected, marked as mismatch', async () => {
  const { conn, p } = open({ helloError: { code: 'PROTOCOL_MISMATCH', message: 'update the extension' } });
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(r.mismatch, true);
  assert.equal(conn.state, 'closed');
  const r2 = await open({ helloResult: { protocol: 2, instanceId: 'I' } }).p;
  assert.equal(r2.mismatch, true);
  const r3 = open({ protocol: 2 });
  assert.equal((await r3.p).mismatch, true, 'a challenge of another protocol');
  assert.equal(r3.got.hellos.length, 0, 'no hello sent to it');
});

test('requests and events before the hello are not acted on', async () => {
  const clock = new FakeClock();
  const conn = new Connection({ port: 1, WebSocket: FakeWebSocket, clock, secret: TEST_SECRET, hello: {}, onRequest: () => assert.fail('not before hello'), onEvent: () => assert.fail('not before hello') });
  conn.open();
  const sock = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  sock.accept();
  sock.receive({ id: 5, method: 'tabs.list', params: {} });
  sock.receive({ id: 6, method: 'ping', params: {} });
  sock.receive({ event: 'instance.updated', params: { name: 'X' } });
  const out = sock.messages();
  assert.equal(out.find((m) => m.id === 5).error.code, 'BAD_REQUEST');
  assert.equal(out.find((m) => m.id === 6).error.code, 'BAD_REQUEST');
  conn.close();
});

test('a copy without a secret opens no socket', async () => {
  const before = FakeWebSocket.all.length;
  const conn = new Connection({ port: 1, WebSocket: FakeWebSocket, clock: new FakeClock(), hello: {} });
  const r = await conn.open();
  assert.equal(r.ok, false);
  assert.equal(r.foreign, true);
  assert.equal(FakeWebSocket.all.length, before);
});

test('pings at least every 20 s; 60 s of silence closes', async () => {
  const { clock, conn, sock, p, got } = open();
  await p;
  assert.ok(PING_MS <= 20_000);
  sock.peer = (msg, s) => { if (msg.method === 'ping') s.receive({ id: msg.id, result: {} }); };
  await clock.advance(5 * 60_000);
  assert.equal(conn.isOpen(), true, 'answered pings keep it open');
  const pings = sock.messages().filter((m) => m.method === 'ping').length;
  assert.ok(pings >= 15, `${pings} pings in 5 min`);
  sock.peer = () => {}; // the far end goes quiet
  await clock.advance(SILENCE_MS + 5_000);
  assert.equal(conn.state, 'closed');
  assert.equal(got.closes.length, 1);
});

test('a closed connection fails its pending requests at once and sends nothing more', async () => {
  const { conn, sock, p } = open();
  await p;
  sock.peer = () => {};
  const pending = conn.request('ping', {}, 10_000);
  sock.drop();
  await assert.rejects(pending, (e) => e.code === 'TIMEOUT');
  assert.equal(conn.reply(9, {}), false);
  assert.equal(conn.emit('tab.closed', {}), false);
});

test('late replies are dropped; requests and events are handed on', async () => {
  const { clock, conn, sock, p, got } = open();
  await p;
  sock.peer = () => {};
  let code = null;
  conn.request('ping', {}, 1_000).catch((e) => { code = e.code; });
  await clock.advance(1_000);
  assert.equal(code, 'TIMEOUT');
  sock.receive({ id: 2, result: {} }); // too late: ignored
  sock.receive({ id: 9, method: 'tabs.list', params: {} });
  sock.receive({ event: 'instance.updated', params: { name: 'X' } });
  await flush();
  assert.equal(got.requests.length, 1);
  assert.equal(got.events.length, 1);
  conn.close();
});
