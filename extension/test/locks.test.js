import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LockManager } from '../lib/locks.js';
import { FakeClock, flush, track } from './helpers.js';

/** A lock manager with a fake clock, fake connections and recorded side effects. */
function setup({ closeManually = false, prepareGrant } = {}) {
  const clock = new FakeClock();
  const open = new Set();
  const events = [];
  const calls = [];
  const closers = new Map();
  const store = { snapshot: null, writes: 0 };
  const hooks = {
    isOpen: (c) => open.has(c),
    emit: (id, conn, event, params) => events.push({ id, conn, event, params }),
    prepareGrant: async (tabId, id) => {
      calls.push(['prepare', tabId, id]);
      if (prepareGrant) await prepareGrant(tabId, id);
    },
    released: async (tabId, id, info) => calls.push(['released', tabId, id, info.handedTo]),
    closeTab: (tabId) => {
      calls.push(['close', tabId]);
      if (!closeManually) return Promise.resolve(true);
      return new Promise((resolve) => closers.set(tabId, resolve));
    },
    persist: (s) => {
      store.snapshot = JSON.parse(JSON.stringify(s));
      store.writes++;
    },
  };
  const m = new LockManager({ clock, hooks });
  const h = {
    clock, m, open, events, calls, closers, store, hooks,
    connect(id, { name = id, leaseMs = 60_000, graceMs = 5_000 } = {}) {
      const conn = { id, n: Math.random() };
      open.add(conn);
      m.connect(id, conn, { name, leaseMs, graceMs });
      return conn;
    },
    drop(id, conn) {
      open.delete(conn);
      m.disconnect(id, conn);
    },
    eventsOf(id, event) {
      return events.filter((e) => e.id === id && (!event || e.event === event));
    },
  };
  return h;
}

function codeOf(fn) {
  try {
    fn();
  } catch (e) {
    return e.code;
  }
  return 'ok';
}

test('a free tab is granted at once, after prepareGrant', async () => {
  const h = setup();
  const a = h.connect('A');
  const r = track(h.m.claim('A', a, 10, 1000));
  await flush();
  assert.equal(r.state, 'resolved');
  assert.deepEqual(r.value, { tabId: 10 });
  assert.deepEqual(h.calls, [['prepare', 10, 'A']]);
  assert.equal(h.m.holderOf(10).instanceId, 'A');
  assert.equal(codeOf(() => h.m.check('A', 10)), 'ok');
});

test('FIFO order with three waiters', async () => {
  const h = setup();
  const a = h.connect('A');
  const conns = { B: h.connect('B'), C: h.connect('C'), D: h.connect('D') };
  h.m.created('A', 1);
  const order = [];
  const claims = {};
  for (const id of ['B', 'C', 'D']) {
    claims[id] = h.m.claim(id, conns[id], 1, 60_000).then(() => order.push(id));
    await h.clock.advance(10);
  }
  assert.equal(h.m.waiting(1), 3);
  h.m.release('A', 1);
  await flush();
  assert.deepEqual(order, ['B']);
  h.m.release('B', 1);
  await flush();
  assert.deepEqual(order, ['B', 'C']);
  h.m.release('C', 1);
  await flush();
  assert.deepEqual(order, ['B', 'C', 'D']);
  assert.equal(h.m.holderOf(1).instanceId, 'D');
  assert.equal(codeOf(() => h.m.check('A', 1)), 'NOT_HELD');
  void a;
});

test('a waiter that releases withdraws its claim: it leaves the queue, the next one gets the tab', async () => {
  const h = setup();
  h.connect('A');
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 1);
  const bClaim = h.m.claim('B', b, 1, 60_000);
  const cClaim = h.m.claim('C', c, 1, 60_000);
  assert.equal(h.m.waiting(1), 2);
  assert.deepEqual(h.m.waitersOf(1, h.clock.now()).map((w) => w.name), ['B', 'C']);
  h.m.release('B', 1);
  await assert.rejects(bClaim, (e) => e.code === 'BAD_REQUEST' && /withdrawn/.test(e.message));
  assert.equal(h.m.waiting(1), 1);
  h.m.release('A', 1);
  await cClaim;
  assert.equal(h.m.holderOf(1).instanceId, 'C');
  assert.equal(codeOf(() => h.m.release('B', 1)), 'NOT_HELD');
});

test('a wait that times out fails with TAB_BUSY naming holder, held-for and position', async () => {
  const h = setup();
  h.connect('A', { name: 'Cursor' });
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 5);
  await h.clock.advance(2_000);
  const rb = track(h.m.claim('B', b, 5, 30_000));
  const rc = track(h.m.claim('C', c, 5, 10_000));
  await h.clock.advance(10_000);
  assert.equal(rc.state, 'rejected');
  assert.equal(rc.error.code, 'TAB_BUSY');
  assert.deepEqual(rc.error.data, { tabId: 5, holder: { instanceId: 'A', name: 'Cursor' }, heldForMs: 12_000, waitingBefore: 1 });
  assert.match(rc.error.message, /held by "Cursor" for 12 s; 1 waiting before you/);
  assert.equal(rb.state, 'pending');
  await h.clock.advance(20_000);
  assert.equal(rb.state, 'rejected');
  assert.equal(rb.error.data.waitingBefore, 0);
  assert.equal(h.m.waiting(5), 0);
  assert.equal(h.m.holderOf(5).instanceId, 'A');
});

test('a waiter past its deadline when the tab is handed over gets TAB_BUSY, never an internal error', async () => {
  const h = setup();
  h.connect('A');
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 1);
  // A try-lock (timeout 0) whose timer has not run yet, then the holder lets go.
  const tryLock = track(h.m.claim('B', b, 1, 0));
  h.m.release('A', 1);
  await flush();
  assert.equal(tryLock.state, 'rejected');
  assert.equal(tryLock.error.code, 'TAB_BUSY');
  assert.match(tryLock.error.message, /held by "A"/);
  assert.equal(h.m.record(1), null, 'nobody else waited: the tab is free');
  // A waiter whose wait ran out a moment ago, while a live one waits behind it.
  h.m.created('A', 2);
  const late = track(h.m.claim('B', b, 2, 1_000));
  const next = track(h.m.claim('C', c, 2, 60_000));
  h.clock.t += 1_000; // its deadline passed; the timer has not fired yet
  h.m.release('A', 2);
  await flush();
  assert.equal(late.error.code, 'TAB_BUSY');
  assert.equal(next.state, 'resolved', 'the next live waiter gets the tab');
  assert.equal(h.m.holderOf(2).instanceId, 'C');
});

test('a claim with timeout 0 is a try-lock', async () => {
  const h = setup();
  h.connect('A');
  const b = h.connect('B');
  h.m.created('A', 5);
  const r = track(h.m.claim('B', b, 5, 0));
  await h.clock.advance(0);
  assert.equal(r.state, 'rejected');
  assert.equal(r.error.code, 'TAB_BUSY');
});

test('an idle holder keeps its tab while nobody waits, loses it past the lease when someone does', async () => {
  const h = setup();
  const a = h.connect('A', { leaseMs: 60_000 });
  const b = h.connect('B', { name: 'Claude Code' });
  h.connect('C');
  h.m.created('A', 7);
  await h.clock.advance(10 * 60_000);
  assert.equal(h.m.holderOf(7).instanceId, 'A', 'no waiter: keeps it');
  assert.equal(codeOf(() => h.m.check('A', 7)), 'ok'); // renews the lease now
  const rb = track(h.m.claim('B', b, 7, 120_000));
  await h.clock.advance(59_000);
  assert.equal(rb.state, 'pending');
  await h.clock.advance(1_000);
  assert.equal(rb.state, 'resolved');
  assert.equal(h.m.holderOf(7).instanceId, 'B');
  const lost = h.eventsOf('A', 'tab.lost');
  assert.equal(lost.length, 1);
  assert.equal(lost[0].conn, a);
  assert.deepEqual(lost[0].params, { tabId: 7, to: { instanceId: 'B', name: 'Claude Code' }, idleMs: 60_000 });
  assert.equal(codeOf(() => h.m.check('A', 7)), 'LOCK_LOST');
  assert.equal(codeOf(() => h.m.release('A', 7)), 'LOCK_LOST');
  assert.equal(codeOf(() => h.m.check('C', 7)), 'NOT_HELD');
  // the released hook ran before the new holder's prepareGrant
  const i = h.calls.findIndex((c) => c[0] === 'released' && c[1] === 7);
  const j = h.calls.findIndex((c) => c[0] === 'prepare' && c[2] === 'B');
  assert.ok(i >= 0 && i < j);
});

test('commands renew the lease; a busy holder is never idle', async () => {
  const h = setup();
  h.connect('A', { leaseMs: 10_000 });
  const b = h.connect('B');
  h.m.created('A', 3);
  const rb = track(h.m.claim('B', b, 3, 50_000));
  for (let i = 0; i < 3; i++) {
    await h.clock.advance(9_000);
    h.m.check('A', 3);
  }
  const done = h.m.use('A', 3); // a command longer than the lease
  await h.clock.advance(15_000);
  assert.equal(rb.state, 'pending', 'a busy holder keeps the tab');
  assert.equal(h.m.holderOf(3).instanceId, 'A');
  await h.clock.advance(8_000);
  assert.equal(rb.state, 'rejected', 'B timed out');
  assert.equal(rb.error.code, 'TAB_BUSY');
  done();
  assert.equal(h.m.holderOf(3).instanceId, 'A');
  // After the command, the lease runs again from its end.
  const rb2 = track(h.m.claim('B', b, 3, 60_000));
  await h.clock.advance(9_999);
  assert.equal(rb2.state, 'pending');
  await h.clock.advance(1);
  assert.equal(rb2.state, 'resolved');
});

test('dead waiters are skipped at hand-over', async () => {
  const h = setup();
  h.connect('A');
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 9);
  const rb = track(h.m.claim('B', b, 9, 60_000));
  const rc = track(h.m.claim('C', c, 9, 60_000));
  h.open.delete(b); // socket died, close not yet processed
  h.m.release('A', 9);
  await flush();
  assert.equal(h.m.holderOf(9).instanceId, 'C');
  assert.equal(rc.state, 'resolved');
  assert.notEqual(rb.state, 'resolved');
  assert.equal(h.m.waiting(9), 0);
  assert.ok(!h.calls.some((x) => x[0] === 'prepare' && x[2] === 'B'));
});

test('a waiter that disconnects keeps its place when it reconnects within the grace', async () => {
  const h = setup();
  h.connect('A');
  const b1 = h.connect('B', { graceMs: 5_000 });
  const c = h.connect('C');
  h.m.created('A', 4);
  const rb1 = track(h.m.claim('B', b1, 4, 60_000));
  const rc = track(h.m.claim('C', c, 4, 60_000));
  h.drop('B', b1);
  await flush();
  assert.equal(rb1.state, 'rejected', 'the dead connection\'s claim is settled at once');
  await h.clock.advance(2_000);
  const b2 = h.connect('B', { graceMs: 5_000 });
  const rb2 = track(h.m.claim('B', b2, 4, 60_000));
  assert.equal(h.m.waiting(4), 2);
  h.m.release('A', 4);
  await flush();
  assert.equal(rb2.state, 'resolved');
  assert.equal(rc.state, 'pending');
  assert.equal(h.m.holderOf(4).instanceId, 'B');
});

test('a waiter that disconnects for good is dropped from the queue', async () => {
  const h = setup();
  h.connect('A');
  const b = h.connect('B', { graceMs: 5_000 });
  const c = h.connect('C');
  h.m.created('A', 4);
  track(h.m.claim('B', b, 4, 60_000));
  const rc = track(h.m.claim('C', c, 4, 60_000));
  h.drop('B', b);
  await h.clock.advance(5_000);
  assert.equal(h.m.isKnown('B'), false);
  assert.equal(h.m.waiting(4), 1);
  h.m.release('A', 4);
  await flush();
  assert.equal(rc.state, 'resolved');
});

test('a leaving creator\'s tab is released only after it finished closing; waiters get TAB_CLOSED', async () => {
  const h = setup({ closeManually: true });
  const a = h.connect('A', { graceMs: 5_000 });
  const b = h.connect('B');
  h.m.created('A', 11);
  const rb = track(h.m.claim('B', b, 11, 60_000));
  h.drop('A', a);
  await h.clock.advance(4_999);
  assert.ok(!h.calls.some((c) => c[0] === 'close'), 'nothing closed within the grace');
  await h.clock.advance(1);
  assert.deepEqual(h.calls.filter((c) => c[0] === 'close'), [['close', 11]]);
  // The tab is closing: nobody gets it, new claims fail at once.
  await h.clock.advance(1_000);
  assert.equal(rb.state, 'pending');
  assert.ok(!h.calls.some((c) => c[0] === 'prepare' && c[2] === 'B'));
  const c = h.connect('C');
  const rc = track(h.m.claim('C', c, 11, 60_000));
  await flush();
  assert.equal(rc.error.code, 'TAB_CLOSED');
  // chrome.tabs.remove completes: the tab is gone.
  h.closers.get(11)(true);
  await flush();
  assert.equal(rb.state, 'rejected');
  assert.equal(rb.error.code, 'TAB_CLOSED');
  assert.equal(rb.error.data.reason, 'creator-left');
  assert.deepEqual(h.eventsOf('B', 'tab.closed').map((e) => e.params), [{ tabId: 11, reason: 'creator-left' }]);
  assert.equal(h.m.record(11), null);
  assert.ok(!h.calls.some((x) => x[0] === 'prepare' && x[2] === 'B'));
});

test('onRemoved arriving before tabs.remove resolves still releases in order, once', async () => {
  const h = setup({ closeManually: true });
  const a = h.connect('A', { graceMs: 0 });
  const b = h.connect('B');
  h.m.created('A', 12);
  const rb = track(h.m.claim('B', b, 12, 60_000));
  h.drop('A', a);
  await h.clock.advance(0);
  h.m.tabRemoved(12);
  await flush();
  assert.equal(rb.error.code, 'TAB_CLOSED');
  assert.equal(rb.error.data.reason, 'creator-left');
  h.closers.get(12)(true);
  await flush();
  assert.equal(h.eventsOf('B', 'tab.closed').length, 1);
});

test('a created tab that survives its close goes to the next waiter', async () => {
  const h = setup({ closeManually: true });
  const a = h.connect('A', { graceMs: 0 });
  const b = h.connect('B');
  h.m.created('A', 13);
  const rb = track(h.m.claim('B', b, 13, 60_000));
  h.drop('A', a);
  await h.clock.advance(0);
  h.closers.get(13)(false);
  await flush();
  assert.equal(rb.state, 'resolved');
  assert.equal(h.m.holderOf(13).instanceId, 'B');
  assert.equal(h.m.record(13).created, false);
});

test('after the grace, borrowed tabs are released without closing and go to waiters', async () => {
  const h = setup();
  const a = h.connect('A', { graceMs: 5_000 });
  const b = h.connect('B');
  track(h.m.claim('A', a, 20, 1_000));
  await flush();
  const rb = track(h.m.claim('B', b, 20, 60_000));
  h.drop('A', a);
  await h.clock.advance(5_000);
  assert.equal(rb.state, 'resolved');
  assert.ok(!h.calls.some((c) => c[0] === 'close'));
  assert.ok(h.calls.some((c) => c[0] === 'released' && c[1] === 20 && c[2] === 'A' && c[3] === 'B'));
});

test('a reconnect within the grace resumes everything', async () => {
  const h = setup();
  const a1 = h.connect('A', { graceMs: 5_000 });
  h.m.created('A', 30);
  track(h.m.claim('A', a1, 31, 1_000));
  await flush();
  h.drop('A', a1);
  await h.clock.advance(4_000);
  const a2 = { id: 'A2' };
  h.open.add(a2);
  const res = h.m.connect('A', a2, { name: 'A', graceMs: 5_000 });
  assert.equal(res.resumed, true);
  assert.deepEqual(res.tabs, [30, 31]);
  await h.clock.advance(60_000);
  assert.ok(!h.calls.some((c) => c[0] === 'close'));
  assert.equal(codeOf(() => h.m.check('A', 30)), 'ok');
  assert.equal(codeOf(() => h.m.check('A', 31)), 'ok');
  // the old connection closing late changes nothing
  h.m.disconnect('A', a1);
  assert.equal(h.m.instance('A').status, 'connected');
});

test('a tab the user closes: holder told, waiters fail at once, holder gets TAB_CLOSED', async () => {
  const h = setup();
  const a = h.connect('A');
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 40);
  const rb = track(h.m.claim('B', b, 40, 60_000));
  const rc = track(h.m.claim('C', c, 40, 60_000));
  h.m.tabRemoved(40);
  await flush();
  assert.equal(rb.error.code, 'TAB_CLOSED');
  assert.equal(rc.error.code, 'TAB_CLOSED');
  assert.deepEqual(h.eventsOf('A', 'tab.closed').map((e) => e.params), [{ tabId: 40, reason: 'user' }]);
  assert.equal(h.eventsOf('A', 'tab.closed')[0].conn, a);
  assert.equal(h.eventsOf('B', 'tab.closed').length, 1);
  assert.equal(codeOf(() => h.m.check('A', 40)), 'TAB_CLOSED');
  assert.equal(codeOf(() => h.m.check('B', 40)), 'NOT_HELD');
  assert.equal(h.m.record(40), null);
  assert.equal(h.clock.pending(), 0 + (h.m._lazyTimer ? 1 : 0));
});

test('a close requested by the holder resolves after the tab is gone', async () => {
  const h = setup({ closeManually: true });
  h.connect('A');
  const b = h.connect('B');
  h.m.created('A', 41);
  const rb = track(h.m.claim('B', b, 41, 60_000));
  const r = track(h.m.close('A', 41));
  await flush();
  assert.equal(r.state, 'pending');
  assert.equal(rb.state, 'pending');
  h.closers.get(41)(true);
  await flush();
  assert.equal(r.state, 'resolved');
  assert.equal(rb.error.code, 'TAB_CLOSED');
  assert.equal(h.eventsOf('A', 'tab.closed').length, 0, 'the holder asked: no event');
  assert.equal(codeOf(() => h.m.check('A', 41)), 'TAB_CLOSED');
});

test('a failed prepareGrant (not attachable) fails the claim and passes the tab on', async () => {
  const h = setup({
    prepareGrant: async (tabId, id) => {
      if (id === 'B') throw Object.assign(new Error('no'), { code: 'NOT_ATTACHABLE' });
    },
  });
  h.connect('A');
  const b = h.connect('B');
  const c = h.connect('C');
  h.m.created('A', 50);
  const rb = track(h.m.claim('B', b, 50, 60_000));
  const rc = track(h.m.claim('C', c, 50, 60_000));
  h.m.release('A', 50);
  await flush();
  assert.equal(rb.error.code, 'NOT_ATTACHABLE');
  assert.equal(rc.state, 'resolved');
  assert.equal(h.m.holderOf(50).instanceId, 'C');
  const fresh = setup({ prepareGrant: async () => { throw Object.assign(new Error('no'), { code: 'NOT_ATTACHABLE' }); } });
  const x = fresh.connect('X');
  const rx = track(fresh.m.claim('X', x, 51, 1_000));
  await flush();
  assert.equal(rx.error.code, 'NOT_ATTACHABLE');
  assert.equal(fresh.m.record(51), null, 'the failed claim of a free tab leaves it free');
});

test('a claim made on a replaced connection is never granted', async () => {
  const h = setup();
  h.connect('A');
  const b1 = h.connect('B');
  h.m.created('A', 60);
  const r1 = track(h.m.claim('B', b1, 60, 60_000));
  // the same instance connects again on a new socket; the old one is still "open"
  const b2 = { id: 'B2' };
  h.open.add(b2);
  h.m.connect('B', b2, { name: 'B' });
  h.m.release('A', 60);
  await flush();
  assert.notEqual(r1.state, 'resolved');
  assert.equal(h.m.record(60), null, 'nobody live waited: the tab is free');
  // and a claim on the replaced connection is refused
  const r2 = track(h.m.claim('B', b1, 61, 1_000));
  await flush();
  assert.equal(r2.state, 'rejected');
});

test('LOCK_LOST vs NOT_HELD vs TAB_CLOSED', async () => {
  const h = setup();
  h.connect('A', { leaseMs: 1_000 });
  const b = h.connect('B');
  h.connect('C');
  h.m.created('A', 70);
  h.m.claim('B', b, 70, 60_000);
  await h.clock.advance(1_000);
  assert.equal(codeOf(() => h.m.check('A', 70)), 'LOCK_LOST');
  assert.equal(codeOf(() => h.m.check('C', 70)), 'NOT_HELD');
  assert.equal(codeOf(() => h.m.check('A', 71)), 'NOT_HELD');
  // A claims it back and gets it when B releases: LOCK_LOST is forgotten.
  const a = h.m.instance('A').conn;
  const ra = track(h.m.claim('A', a, 70, 60_000));
  h.m.release('B', 70);
  await flush();
  assert.equal(ra.state, 'resolved');
  assert.equal(codeOf(() => h.m.check('A', 70)), 'ok');
  h.m.tabRemoved(70);
  assert.equal(codeOf(() => h.m.check('A', 70)), 'TAB_CLOSED');
});

test('service-worker restart: the stored state makes the same decisions', async () => {
  const h = setup();
  h.connect('A', { name: 'Cursor', leaseMs: 1_000, graceMs: 5_000 });
  const b = h.connect('B', { name: 'Cursor', graceMs: 5_000 });
  const c = h.connect('C', { graceMs: 5_000 });
  h.m.created('A', 1); // A created 1
  h.m.created('B', 2); // B created 2 …
  h.m.claim('A', h.m.instance('A').conn, 2, 60_000); // A waits for 2
  track(h.m.claim('C', c, 3, 1_000)); // C borrowed 3
  h.m.claim('B', b, 1, 60_000); // B waits for 1
  await h.clock.advance(1_000); // A idle past its lease while B waits: A loses 1 to B
  assert.equal(h.m.holderOf(1).instanceId, 'B');
  await flush();
  const stored = h.store.snapshot;
  assert.ok(stored, 'persisted');
  assert.equal(stored.instances.find((i) => i.instanceId === 'B').label, 'Cursor 2');

  // The worker stops: timers die. A new manager from the stored state.
  h.m.dispose();
  const clock = h.clock;
  const calls = [];
  const events = [];
  const open = new Set();
  const m2 = LockManager.restore(stored, {
    clock,
    hooks: {
      isOpen: (x) => open.has(x),
      emit: (id, conn, event, params) => events.push({ id, event, params }),
      prepareGrant: async (t, i) => calls.push(['prepare', t, i]),
      released: async (t, i, info) => calls.push(['released', t, i, info.handedTo]),
      closeTab: async (t) => { calls.push(['close', t]); return true; },
      persist: () => {},
    },
  });
  m2.resume();
  assert.equal(m2.holderOf(1).instanceId, 'B');
  assert.equal(m2.holderOf(2).instanceId, 'B');
  assert.equal(m2.holderOf(3).instanceId, 'C');
  assert.equal(m2.record(2).queue.length, 0, 'claims queued on dead connections are dropped');
  assert.equal(m2.instance('B').label, 'Cursor 2');
  for (const id of ['A', 'B', 'C']) assert.equal(m2.instance(id).status, 'grace');

  // A and B reconnect within the grace; C does not.
  await clock.advance(3_000);
  const a2 = { id: 'a2' };
  const b2 = { id: 'b2' };
  open.add(a2);
  open.add(b2);
  m2.connect('A', a2, { name: 'Cursor' });
  const rb = m2.connect('B', b2, { name: 'Cursor' });
  assert.deepEqual(rb.tabs, [2, 1]);
  assert.equal(codeOf(() => m2.check('A', 1)), 'LOCK_LOST', 'what A lost stays lost');
  assert.equal(codeOf(() => m2.check('A', 2)), 'NOT_HELD');
  await clock.advance(2_000);
  // C's grace ran out: its borrowed tab is released, not closed.
  assert.equal(m2.record(3), null);
  assert.ok(!calls.some((x) => x[0] === 'close'));
  assert.ok(calls.some((x) => x[0] === 'released' && x[1] === 3 && x[2] === 'C'));
  // B leaves for good: its created tab 2 is closed, 1 (borrowed) released.
  open.delete(b2);
  m2.disconnect('B', b2);
  await clock.advance(5_000);
  assert.deepEqual(calls.filter((x) => x[0] === 'close'), [['close', 2]]);
  assert.equal(m2.record(1), null);
  assert.equal(m2.record(2), null);
  m2.dispose();
});

test('restore finishes a close that was under way when the worker stopped', async () => {
  const h = setup({ closeManually: true });
  const a = h.connect('A', { graceMs: 0 });
  h.m.created('A', 80);
  h.drop('A', a);
  await h.clock.advance(0);
  assert.equal(h.store.snapshot.tabs[0].closing, 'creator-left');
  h.m.dispose();
  const calls = [];
  const m2 = LockManager.restore(h.store.snapshot, {
    clock: h.clock,
    hooks: { closeTab: async (t) => { calls.push(t); return true; }, persist: () => {} },
  });
  m2.resume();
  await flush();
  assert.deepEqual(calls, [80]);
  assert.equal(m2.record(80), null);
});

test('a tab\'s target id is stored with its record and restored; it survives hand-overs', async () => {
  const h = setup();
  const a = h.connect('A');
  const b = h.connect('B');
  h.m.created('A', 7);
  h.m.setTarget(7, 'TARGET-7');
  assert.equal(h.store.snapshot.tabs[0].targetId, 'TARGET-7', 'persisted at once');
  h.m.setTarget(8, 'nothing'); // a free tab has no record
  const got = track(h.m.claim('B', b, 7, 10_000));
  await flush();
  h.m.release('A', 7);
  await flush();
  assert.equal(got.state, 'resolved');
  assert.equal(h.m.record(7).targetId, 'TARGET-7', 'the same tab, the same target');
  const m2 = LockManager.restore(h.store.snapshot, { clock: h.clock });
  assert.equal(m2.record(7).targetId, 'TARGET-7');
  assert.equal(m2.tabs.size, 1);
  void a;
});

test('restore ignores garbage', () => {
  const clock = new FakeClock();
  for (const s of [null, 42, { v: 99 }, { v: 1, instances: 'x', tabs: [{ tabId: 'no' }, null] }]) {
    const m = LockManager.restore(s, { clock });
    assert.equal(m.tabs.size, 0);
  }
});

test('every change is persisted; lease renewals lazily', async () => {
  const h = setup();
  const a = h.connect('A');
  const w0 = h.store.writes;
  track(h.m.claim('A', a, 90, 1_000));
  assert.ok(h.store.writes > w0);
  assert.equal(h.store.snapshot.tabs[0].holder, 'A');
  await flush();
  const w1 = h.store.writes;
  for (let i = 0; i < 50; i++) h.m.check('A', 90);
  assert.equal(h.store.writes, w1, 'renewals are not written one by one');
  await h.clock.advance(1_000);
  assert.equal(h.store.writes, w1 + 1);
});

test('labels: two "Cursor" instances get "Cursor" and "Cursor 2", distinct colours; rename relabels', () => {
  const h = setup();
  h.connect('A', { name: 'Cursor' });
  h.connect('B', { name: 'Cursor' });
  assert.equal(h.m.instance('A').label, 'Cursor');
  assert.equal(h.m.instance('B').label, 'Cursor 2');
  assert.notEqual(h.m.instance('A').color, h.m.instance('B').color);
  h.m.rename('B', 'VS Code');
  assert.equal(h.m.instance('B').label, 'VS Code');
  h.m.rename('A', 'VS Code');
  assert.equal(h.m.instance('A').label, 'VS Code 2');
});

test('100 connect/disconnect cycles leave no state behind', async () => {
  const h = setup();
  const other = h.connect('O');
  h.m.created('O', 1);
  for (let i = 0; i < 100; i++) {
    const id = `I${i}`;
    const conn = h.connect(id, { graceMs: 100 });
    h.m.created(id, 1000 + i);
    track(h.m.claim(id, conn, 2000 + i, 1_000)); // borrowed
    track(h.m.claim(id, conn, 1, 60_000)); // waits for O's tab
    await flush();
    h.m.check(id, 1000 + i);
    if (i % 2) {
      h.drop(id, conn);
    } else {
      h.m.release(id, 2000 + i);
      h.drop(id, conn);
    }
    await h.clock.advance(100);
  }
  await h.clock.advance(2_000);
  assert.deepEqual([...h.m.instances.keys()], ['O']);
  assert.deepEqual([...h.m.tabs.keys()], [1]);
  assert.equal(h.m.waiting(1), 0);
  assert.equal(h.m._inflight.size, 0);
  assert.equal(h.m._chains.size, 0);
  assert.equal(h.clock.pending(), 0);
  assert.equal(h.calls.filter((c) => c[0] === 'close').length, 100);
  assert.equal(h.store.snapshot.instances.length, 1);
  void other;
});
