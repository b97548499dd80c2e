import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, PING_MS, SILENCE_MS } from '../lib/connection.js';
import { FakeClock, flush } from './helpers.js';
import { FakeWebSocket } from './fakes.js';

function open({ helloResult, helloError } = {}) {
  const clock = new FakeClock();
  const got = { requests: [], events: [], closes: [] };
  const conn = new Connection({
    port: 8765,
    WebSocket: FakeWebSocket,
    clock,
    hello: { protocol: 1, extensionVersion: '0.1.0', browser: 'Chrome/1', profileId: 'p' },
    onRequest: (c, m) => got.requests.push(m),
    onEvent: (c, m) => got.events.push(m),
    onClose: (c, info) => got.closes.push(info),
  });
  const ws = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  const p = conn.open();
  const sock = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  void ws;
  sock.peer = (msg, s) => {
    if (msg.method === 'hello') {
      if (helloError) s.receive({ id: msg.id, error: helloError });
      else s.receive({ id: msg.id, result: helloResult || { protocol: 1, instanceId: 'I', name: 'Cursor', leaseMs: 60000, graceMs: 5000 } });
    }
  };
  sock.accept();
  return { clock, conn, sock, p, got };
}

test('hello is the first frame; then the connection is open', async () => {
  const { conn, sock, p } = open();
  const r = await p;
  assert.equal(r.ok, true);
  assert.equal(sock.messages()[0].method, 'hello');
  assert.equal(sock.messages()[0].id, 1);
  assert.equal(conn.instanceId, 'I');
  assert.equal(conn.isOpen(), true);
  conn.close();
});

test('PROTOCOL_MISMATCH in the hello: not connected, marked as mismatch', async () => {
  const { conn, p } = open({ helloError: { code: 'PROTOCOL_MISMATCH', message: 'update the extension' } });
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(r.mismatch, true);
  assert.equal(conn.state, 'closed');
  const r2 = await open({ helloResult: { protocol: 2, instanceId: 'I' } }).p;
  assert.equal(r2.mismatch, true);
});

test('requests before hello are refused; ping is answered at once', async () => {
  const clock = new FakeClock();
  const conn = new Connection({ port: 1, WebSocket: FakeWebSocket, clock, hello: {}, onRequest: () => assert.fail('not before hello') });
  conn.open();
  const sock = FakeWebSocket.all[FakeWebSocket.all.length - 1];
  sock.accept();
  sock.receive({ id: 5, method: 'tabs.list', params: {} });
  sock.receive({ id: 6, method: 'ping', params: {} });
  const out = sock.messages();
  assert.equal(out.find((m) => m.id === 5).error.code, 'BAD_REQUEST');
  assert.deepEqual(out.find((m) => m.id === 6), { id: 6, result: {} });
  conn.close();
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
