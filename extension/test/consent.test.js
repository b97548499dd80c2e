import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Consent, normalizePolicy, originOnly, MAX_ASKS_PER_INSTANCE } from '../lib/consent.js';
import { LockManager } from '../lib/locks.js';
import { FakeClock, flush, track } from './helpers.js';

function setup() {
  const clock = new FakeClock();
  const shown = [];
  let writes = 0;
  const c = new Consent({ clock, hooks: { asked: (asks) => shown.push(asks.map((a) => a.tabId)), persist: () => writes++ } });
  return { clock, c, shown, writes: () => writes };
}

const ask = (c, o = {}) => c.ask({ instanceId: 'A', conn: 'cA', tabId: 7, label: 'Claude Code', title: 'Bank', url: 'https://bank.example/acct?id=1', timeoutMs: 5_000, ...o });

test('policy: ask by default; allow and deny as said; anything else is ask', () => {
  assert.equal(normalizePolicy(undefined), 'ask');
  assert.equal(normalizePolicy('ALLOW'), 'ask');
  assert.equal(normalizePolicy('allow'), 'allow');
  assert.equal(normalizePolicy('deny'), 'deny');
  const { c } = setup();
  assert.equal(c.decide('A', 7, 'ask'), 'ask');
  assert.equal(c.decide('A', 7, undefined), 'ask');
  assert.equal(c.decide('A', 7, 'allow'), 'ok');
  assert.equal(c.decide('A', 7, 'deny'), 'deny');
  // Agent tabs (made by a client) need nobody's consent, whatever the policy.
  c.markAgent(8);
  assert.equal(c.decide('A', 8, 'deny'), 'ok');
  assert.equal(c.decide('B', 9, 'deny', { agent: true }), 'ok');
  // Consent is per (tab, instance).
  c.grant(7, 'A');
  assert.equal(c.decide('A', 7, 'ask'), 'ok');
  assert.equal(c.decide('B', 7, 'ask'), 'ask');
  assert.equal(c.decide('B', 7, 'deny'), 'deny');
});

test('origin only: path and query hidden', () => {
  assert.equal(originOnly('https://bank.example/acct?id=1#x'), 'https://bank.example/…');
  assert.equal(originOnly('http://127.0.0.1:8080/who.html?who=user'), 'http://127.0.0.1:8080/…');
  assert.equal(originOnly('about:blank'), 'about:…');
  assert.equal(originOnly('data:text/html,secret'), 'data:…');
  assert.equal(originOnly(''), '');
});

test('allowed: the claim goes on and the consent is remembered for that instance', async () => {
  const { c, shown } = setup();
  const p = track(ask(c));
  await flush();
  assert.equal(c.pending().length, 1);
  assert.deepEqual(shown.at(-1), [7]);
  const [q] = c.pending();
  assert.equal(q.label, 'Claude Code');
  assert.equal(q.title, 'Bank');
  assert.equal(c.answer(q.id, true), true);
  await flush();
  assert.equal(p.state, 'resolved');
  assert.deepEqual(shown.at(-1), []);
  assert.ok(c.granted(7, 'A'));
  assert.equal(c.answer(q.id, true), false, 'answered once');
});

test('denied: CONSENT_DENIED at once, nothing remembered', async () => {
  const { c } = setup();
  const p = track(ask(c));
  await flush();
  c.answer(c.pending()[0].id, false);
  await flush();
  assert.equal(p.state, 'rejected');
  assert.equal(p.error.code, 'CONSENT_DENIED');
  assert.match(p.error.message, /said no/);
  assert.ok(!c.granted(7, 'A'));
  assert.equal(c.pending().length, 0);
});

test('nobody answers: CONSENT_TIMEOUT after the claim timeout; timeout 0 fails at once', async () => {
  const { c, clock } = setup();
  const p = track(ask(c, { timeoutMs: 2_000 }));
  await clock.advance(1_990);
  assert.equal(p.state, 'pending');
  await clock.advance(20);
  assert.equal(p.state, 'rejected');
  assert.equal(p.error.code, 'CONSENT_TIMEOUT');
  assert.equal(p.error.data.waitedMs, 2_000);
  assert.equal(c.pending().length, 0);
  const z = track(ask(c, { timeoutMs: 0 }));
  await flush();
  assert.equal(z.error.code, 'CONSENT_TIMEOUT');
  assert.equal(c.pending().length, 0, 'a try-once claim never asks');
});

test('the tab closes while asking: TAB_CLOSED; the connection closes: the question goes', async () => {
  const { c } = setup();
  const p = track(ask(c));
  const q = track(ask(c, { instanceId: 'B', conn: 'cB', tabId: 9 }));
  await flush();
  c.tabRemoved(7);
  c.connectionClosed('B', 'cB');
  await flush();
  assert.equal(p.error.code, 'TAB_CLOSED');
  assert.equal(q.state, 'rejected');
  assert.equal(c.pending().length, 0);
});

test('asking again for the same tab takes over the open question; asks per instance are bounded', async () => {
  const { c } = setup();
  const first = track(ask(c));
  await flush();
  const id = c.pending()[0].id;
  const second = track(ask(c, { conn: 'cA2' }));
  await flush();
  assert.equal(first.error.code, 'BAD_REQUEST');
  assert.equal(c.pending().length, 1);
  assert.equal(c.pending()[0].id, id, 'same question on screen');
  c.answer(id, true);
  await flush();
  assert.equal(second.state, 'resolved');
  for (let t = 100; t < 100 + MAX_ASKS_PER_INSTANCE; t++) track(ask(c, { tabId: t }));
  const over = track(ask(c, { tabId: 999 }));
  await flush();
  assert.equal(over.error.code, 'BAD_REQUEST');
  assert.equal(c.pending().length, MAX_ASKS_PER_INSTANCE);
  c.dispose();
});

test('taking back ends every consent for the tab and makes an agent tab the user\'s', () => {
  const { c } = setup();
  c.grant(7, 'A');
  c.grant(7, 'B');
  c.markAgent(8);
  assert.equal(c.takeBack(7), true);
  assert.equal(c.takeBack(8), true);
  assert.equal(c.decide('A', 7, 'ask'), 'ask');
  assert.equal(c.decide('B', 8, 'ask'), 'ask');
  assert.equal(c.takeBack(7), false);
});

test('an instance gone for good loses its consents; snapshot and restore keep marks and grants, never questions', async () => {
  const { c, clock } = setup();
  c.grant(7, 'A');
  c.grant(7, 'B');
  c.markAgent(8);
  track(ask(c, { tabId: 9 }));
  await flush();
  c.instanceGone('B');
  const r = Consent.restore(JSON.parse(JSON.stringify(c.snapshot())), { clock });
  assert.ok(r.granted(7, 'A'));
  assert.ok(!r.granted(7, 'B'));
  assert.ok(r.isAgent(8));
  assert.equal(r.pending().length, 0);
  r.retainTabs(new Set([8]));
  assert.ok(!r.granted(7, 'A'));
  assert.ok(r.isAgent(8));
  assert.equal(Consent.restore({ v: 99 }, { clock }).agent.size, 0);
  c.dispose();
});

// ------------------------------------------------------------- the lock manager

function locks() {
  const clock = new FakeClock();
  const open = new Set();
  const events = [];
  const released = [];
  const m = new LockManager({
    clock,
    hooks: {
      isOpen: (c) => open.has(c),
      emit: (id, conn, event, params) => events.push({ id, event, params }),
      released: async (tabId, id, info) => released.push({ tabId, id, ...info }),
    },
  });
  const connect = (id, userTabs) => {
    const conn = { id };
    open.add(conn);
    m.connect(id, conn, { name: id, userTabs });
    return conn;
  };
  return { clock, m, events, released, connect };
}

test('the policy from the hello is kept per instance, ask when absent, and survives a restore', () => {
  const { m, connect, clock } = locks();
  connect('A', 'allow');
  connect('B');
  connect('C', 'deny');
  assert.equal(m.instance('A').userTabs, 'allow');
  assert.equal(m.instance('B').userTabs, 'ask');
  assert.equal(m.instance('C').userTabs, 'deny');
  const r = LockManager.restore(JSON.parse(JSON.stringify(m.snapshot())), { clock });
  assert.equal(r.instance('A').userTabs, 'allow');
  assert.equal(r.status().instances.find((i) => i.instanceId === 'C').userTabs, 'deny');
  m.dispose();
  r.dispose();
});

test('take back: the holder is told, its next command is TAKEN_BACK, waiters fail, the tab is free', async () => {
  const { m, connect, events, released } = locks();
  const a = connect('A');
  const b = connect('B');
  await m.claim('A', a, 7, 1000);
  const waiter = track(m.claim('B', b, 7, 30_000));
  await flush();
  assert.equal(m.takeBack(7), true);
  await flush();
  assert.deepEqual(events.filter((e) => e.event === 'tab.takenBack'), [{ id: 'A', event: 'tab.takenBack', params: { tabId: 7 } }]);
  assert.throws(() => m.check('A', 7), (e) => e.code === 'TAKEN_BACK' && /took tab 7 back/.test(e.message));
  assert.equal(waiter.error.code, 'TAKEN_BACK');
  assert.equal(m.holderOf(7), null);
  assert.deepEqual(released.at(-1), { tabId: 7, id: 'A', handedTo: null, origGroupId: undefined, takenBack: true, created: false });
  assert.equal(m.takeBack(7), false, 'nothing to take back twice');
  // Claimed again later, the holder uses it as before.
  await m.claim('A', a, 7, 1000);
  assert.doesNotThrow(() => m.check('A', 7));
  m.dispose();
});
