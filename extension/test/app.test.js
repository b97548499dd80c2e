import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { App, browserFromUserAgent, STATE_KEY, MAX_RECENT_LOG, PAIRING_KEY } from '../lib/app.js';
import { parsePairingCode } from '../lib/auth.js';
import { FakeClock, flush, track } from './helpers.js';
import { FakeWebSocket, FakeBrowser } from './fakes.js';
import { TEST_SECRET, challenge, helloValid, newNonce, tabmuxProof } from './tabmux-auth.js';

const apps = [];
afterEach(() => {
  for (const a of apps.splice(0)) {
    if (a.discovery) a.discovery.stop();
    if (a.locks) a.locks.dispose();
    if (a.consent) a.consent.dispose();
    for (const c of a.conns.values()) c.close();
  }
  FakeWebSocket.onCreate = null;
  FakeWebSocket.all = [];
});

/** A tabmux instance on a port, played by the test. */
class Peer {
  // userTabs: these tests are about locks; the consent tests at the end ask.
  constructor(world, port, { instanceId, name = 'Peer', leaseMs = 60_000, graceMs = 5_000, protocol = 1, userTabs = 'allow', secret = TEST_SECRET } = {}) {
    Object.assign(this, { world, port, instanceId: instanceId || `inst-${port}`, name, leaseMs, graceMs, protocol, userTabs, secret });
    this.ws = null;
    this.events = [];
    this.replies = new Map();
    this.nextId = 1;
    this.hellos = [];
    this.sockets = [];
  }

  probeBody() {
    return { tabmux: 1, protocol: this.protocol };
  }

  attach(ws) {
    this.ws = ws;
    this.sockets.push(ws);
    const nonce = newNonce();
    ws.peer = (msg, sock) => {
      if (sock !== this.ws) return;
      if (msg.method === 'hello') {
        this.hellos.push(msg.params);
        if (this.protocol !== 1) {
          sock.receive({ id: msg.id, error: { code: 'PROTOCOL_MISMATCH', message: 'tabmux speaks 2' } });
          return;
        }
        if (!helloValid(msg.params, this.secret, nonce, this.port)) {
          sock.receive({ id: msg.id, error: { code: 'UNAUTHORIZED', message: 'no valid proof' } });
          sock.drop(4002);
          return;
        }
        const proof = tabmuxProof(this.secret, nonce, msg.params.nonce, this.port, this.instanceId);
        sock.receive({ id: msg.id, result: { protocol: 1, proof, instanceId: this.instanceId, name: this.name, pid: 1, version: '0.1.0', leaseMs: this.leaseMs, graceMs: this.graceMs, userTabs: this.userTabs } });
      } else if (msg.method === 'ping') {
        sock.receive({ id: msg.id, result: {} });
      } else if (msg.event) {
        this.events.push(msg);
      } else if ('id' in msg && !msg.method) {
        const r = this.replies.get(msg.id);
        if (r) {
          this.replies.delete(msg.id);
          r(msg);
        }
      }
    };
    Promise.resolve().then(() => {
      ws.accept();
      ws.receive(challenge(nonce, this.protocol));
    });
  }

  /** Send a request to the extension; resolves with the reply frame. */
  request(method, params = {}) {
    const id = this.nextId++;
    const ws = this.ws;
    return new Promise((resolve) => {
      this.replies.set(id, resolve);
      ws.receive({ id, method, params, trace: `t-${id}` });
    });
  }

  eventsOf(name) {
    return this.events.filter((e) => e.event === name).map((e) => e.params);
  }
}

async function world({ browser = new FakeBrowser(), clock = new FakeClock() } = {}) {
  const peers = new Map();
  const w = { browser, clock, peers, logs: [] };
  FakeWebSocket.onCreate = (ws) => {
    const port = Number(/:(\d+)\//.exec(ws.url)[1]);
    const p = peers.get(port);
    if (p && p.up) p.attach(ws);
    else Promise.resolve().then(() => ws.drop());
  };
  const fetch = async (url) => {
    const port = Number(/:(\d+)\//.exec(url)[1]);
    const p = peers.get(port);
    if (!p || !p.up) throw new TypeError('Failed to fetch');
    return { status: 200, text: async () => JSON.stringify(p.probeBody()) };
  };
  w.newApp = async () => {
    const app = new App({
      api: browser.api,
      WebSocket: FakeWebSocket,
      fetch,
      clock,
      log: (l) => w.logs.push(l),
      version: '0.1.0',
      userAgent: 'Mozilla/5.0 Chrome/156.0.8078.108 Safari/537.36',
      randomId: () => 'r1',
    });
    browser.listeners.removed = [(id) => app.onTabRemoved(id)];
    apps.push(app);
    await app.start();
    w.app = app;
    return app;
  };
  w.peer = (port, opts) => {
    const p = new Peer(w, port, opts);
    p.up = true;
    peers.set(port, p);
    return p;
  };
  w.until = async (pred, ms = 5_000) => {
    for (let t = 0; t < ms; t += 50) {
      if (pred()) return true;
      await clock.advance(50);
    }
    return pred();
  };
  return w;
}

test('browser version from the user agent', () => {
  assert.equal(browserFromUserAgent('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.108 Safari/537.36'), 'Chrome/156.0.8078.108');
  assert.equal(browserFromUserAgent(''), 'Chrome/unknown');
});

test('hello first, then tabs.create, cdp relay and events to the holder only', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'Cursor' });
  const b = w.peer(8766, { name: 'Cursor' });
  assert.ok(await w.until(() => app.conns.size === 2), 'both connected');
  const { nonce, proof, ...hello } = a.hellos[0];
  assert.deepEqual(hello, { protocol: 1, extensionVersion: '0.1.0', browser: 'Chrome/156.0.8078.108', profileId: 'p-r1' });
  assert.match(nonce, /^[0-9a-f]{64}$/);
  assert.match(proof, /^[0-9a-f]{64}$/);
  assert.equal(w.browser.local.profileId, 'p-r1');

  const created = await a.request('tabs.create', { url: 'https://example.com/' });
  const tabId = created.result.tabId;
  const tab = w.browser.tabs.get(tabId);
  const userWindow = [...w.browser.windows.values()].find((x) => x.focused);
  assert.notEqual(tab.windowId, userWindow && userWindow.id, 'in a window of its own, not the user\'s');
  assert.equal(w.browser.windows.get(tab.windowId).focused, false, 'a window that does not take the focus');
  assert.ok(w.browser.attached.has(tabId), 'debugger attached before the reply');
  await w.clock.advance(10);
  assert.equal(w.browser.group(tabId).title, 'Cursor');

  const r = await a.request('cdp', { tabId, method: 'Runtime.evaluate', params: { expression: '1+1' } });
  assert.deepEqual(r.result, { ok: true, method: 'Runtime.evaluate' });
  const e = await a.request('cdp', { tabId, method: 'DOM.resolveNode', params: { nope: true } });
  assert.equal(e.error.code, 'CDP_ERROR');
  assert.deepEqual(e.error.data, { cdpCode: -32601, cdpMessage: "'Nope.nope' wasn't found" });

  await app.onDebuggerEvent({ tabId }, 'Page.loadEventFired', { timestamp: 1 });
  await app.onDebuggerEvent({ tabId, sessionId: 'S1' }, 'Runtime.consoleAPICalled', { type: 'log' });
  assert.deepEqual(a.eventsOf('cdp.event'), [
    { tabId, method: 'Page.loadEventFired', params: { timestamp: 1 } },
    { tabId, sessionId: 'S1', method: 'Runtime.consoleAPICalled', params: { type: 'log' } },
  ]);
  assert.equal(b.eventsOf('cdp.event').length, 0);

  // B does not hold it; B's group is "Cursor 2".
  const nb = await b.request('cdp', { tabId, method: 'Runtime.evaluate', params: {} });
  assert.equal(nb.error.code, 'NOT_HELD');
  const bt = (await b.request('tabs.create', {})).result.tabId;
  await w.clock.advance(10);
  assert.equal(w.browser.group(bt).title, 'Cursor 2');
  assert.notEqual(w.browser.group(bt).color, w.browser.group(tabId).color);

  const listA = (await a.request('tabs.list', {})).result.tabs;
  assert.deepEqual(listA.map((t) => t.tabId), [tabId]);
  assert.equal(listA[0].mine, true);
  assert.equal(listA[0].created, true);
  const all = (await b.request('tabs.list', { all: true })).result.tabs;
  const seen = all.find((t) => t.tabId === tabId);
  assert.deepEqual(seen.holder, { instanceId: a.instanceId, name: 'Cursor' });
  assert.equal(seen.mine, false);
});

test('claim waits, times out with TAB_BUSY, is granted on release with a fresh debugger session', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A' });
  const b = w.peer(8766, { name: 'B' });
  await w.until(() => app.conns.size === 2);
  const tabId = (await a.request('tabs.create', {})).result.tabId;

  const busy = b.request('tabs.claim', { tabId, timeoutMs: 1_000 });
  await w.clock.advance(1_000);
  const busyReply = await busy;
  assert.equal(busyReply.error.code, 'TAB_BUSY');
  assert.equal(busyReply.error.data.holder.name, 'A');

  const claim = b.request('tabs.claim', { tabId, timeoutMs: 10_000 });
  await w.clock.advance(100);
  let granted = null;
  claim.then((r) => { granted = r; });
  await flush();
  assert.equal(granted, null);
  const rel = await a.request('tabs.release', { tabId });
  assert.deepEqual(rel.result, {});
  await w.clock.advance(10);
  assert.deepEqual(granted.result, { tabId });
  assert.ok(w.browser.attached.has(tabId));
  assert.equal((await a.request('cdp', { tabId, method: 'Page.getFrameTree' })).error.code, 'NOT_HELD');
  assert.equal((await b.request('cdp', { tabId, method: 'Page.getFrameTree' })).result.ok, true);
  // B borrowed it: it joined B's group; on release it leaves it (back to no group).
  await w.clock.advance(10);
  assert.equal(w.browser.group(tabId).title, 'B');
  await b.request('tabs.release', { tabId });
  await w.clock.advance(10);
  assert.equal(w.browser.group(tabId), null);
  assert.ok(!w.browser.attached.has(tabId), 'detached once free');
});

test('a borrowed user tab goes back to its own group on release', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A' });
  await w.until(() => app.conns.size === 1);
  const user = w.browser.addTab({ url: 'https://mail.example/' });
  const other = w.browser.addTab({ url: 'https://docs.example/' });
  const gid = await w.browser.api.tabs.group({ tabIds: [user.id, other.id] });
  await w.browser.api.tabGroups.update(gid, { title: 'Mine', color: 'green' });
  const r = await a.request('tabs.claim', { tabId: user.id, timeoutMs: 1000 });
  assert.deepEqual(r.result, { tabId: user.id });
  await w.clock.advance(10);
  assert.equal(w.browser.group(user.id).title, 'A');
  await a.request('tabs.release', { tabId: user.id });
  await w.clock.advance(10);
  assert.equal(w.browser.group(user.id).id, gid);
});

test('a borrowed tab released before its grouping reported back still returns to its own group', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A' });
  await w.until(() => app.conns.size === 1);
  const user = w.browser.addTab({ url: 'https://mail.example/' });
  const other = w.browser.addTab({ url: 'https://docs.example/' });
  const gid = await w.browser.api.tabs.group({ tabIds: [user.id, other.id] });
  await w.browser.api.tabGroups.update(gid, { title: 'Mine', color: 'green' });
  const claimed = a.request('tabs.claim', { tabId: user.id, timeoutMs: 1000 });
  const released = claimed.then(() => a.request('tabs.release', { tabId: user.id }));
  await released;
  await w.clock.advance(10);
  assert.equal(w.browser.group(user.id).id, gid);
  assert.equal(app.groups.origin.size, 0);
});

test('chrome:// tabs are NOT_ATTACHABLE; missing tabs NOT_FOUND; bad params BAD_REQUEST', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const settings = w.browser.addTab({ url: 'chrome://settings/' });
  assert.equal((await a.request('tabs.claim', { tabId: settings.id, timeoutMs: 10 })).error.code, 'NOT_ATTACHABLE');
  assert.equal((await a.request('tabs.create', { url: 'chrome://version' })).error.code, 'NOT_ATTACHABLE');
  const store = w.browser.addTab({ url: 'https://chromewebstore.google.com/detail/x' });
  assert.equal((await a.request('tabs.claim', { tabId: store.id })).error.code, 'NOT_ATTACHABLE');
  assert.equal((await a.request('tabs.claim', { tabId: 99999, timeoutMs: 10 })).error.code, 'NOT_FOUND');
  assert.equal((await a.request('tabs.claim', { tabId: 'x' })).error.code, 'BAD_REQUEST');
  assert.equal((await a.request('cdp', { tabId: 1 })).error.code, 'BAD_REQUEST');
  assert.equal((await a.request('no.such.method', {})).error.code, 'BAD_REQUEST');
  // malformed frames never crash and are answered
  a.ws.receive('{"id":77,"method":"cdp","params":[1]}');
  a.ws.receive('garbage');
  await flush();
  const sent = a.ws.messages();
  assert.ok(sent.some((m) => m.id === 77 && m.error.code === 'BAD_REQUEST'));
  assert.ok(sent.some((m) => m.event === 'protocol.error' && m.params.code === 'BAD_REQUEST'));
  assert.equal(app.conns.size, 1, 'still connected');
});

test('replies are never delivered to a replaced connection', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  let release;
  w.browser.onCommand = () => new Promise((r) => { release = r; });
  const first = a.ws;
  const id = a.nextId++;
  first.receive({ id, method: 'cdp', params: { tabId, method: 'Page.getLayoutMetrics', params: {} } });
  await flush();
  assert.ok(release, 'command in flight');
  first.drop(); // the socket dies
  await w.until(() => app.conns.size === 1 && app.conns.get(a.instanceId).ws !== first);
  const second = a.ws;
  assert.notEqual(second, first);
  const before = second.sent.length;
  release({ late: true });
  await flush();
  assert.ok(!second.messages().slice(before).some((m) => m.id === id), 'not on the new connection');
  assert.ok(!first.messages().some((m) => m.id === id && m.result), 'not on the dead one either');
  // the instance resumed within its grace: its tab is still its own, and it is told to re-enable
  assert.ok(a.eventsOf('tab.attached').some((e) => e.tabId === tabId));
  w.browser.onCommand = null;
  assert.equal((await a.request('cdp', { tabId, method: 'Page.getFrameTree' })).result.ok, true);
});

test('a user closing a held tab: tab.closed to the holder, TAB_CLOSED after', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  const b = w.peer(8766);
  await w.until(() => app.conns.size === 2);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  const waiting = b.request('tabs.claim', { tabId, timeoutMs: 60_000 });
  await flush();
  w.browser.closeTab(tabId);
  await flush();
  assert.equal((await waiting).error.code, 'TAB_CLOSED');
  assert.deepEqual(a.eventsOf('tab.closed'), [{ tabId, reason: 'user' }]);
  assert.deepEqual(b.eventsOf('tab.closed'), [{ tabId, reason: 'user' }]);
  assert.equal((await a.request('cdp', { tabId, method: 'Page.getFrameTree' })).error.code, 'TAB_CLOSED');
});

test('an instance that leaves: after the grace its created tabs close, then waiters get TAB_CLOSED', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { graceMs: 2_000 });
  const b = w.peer(8766);
  await w.until(() => app.conns.size === 2);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  let finishRemove;
  w.browser.removeDelay = () => new Promise((r) => { finishRemove = r; });
  const waiting = b.request('tabs.claim', { tabId, timeoutMs: 60_000 });
  let answer = null;
  waiting.then((r) => { answer = r; });
  a.up = false;
  a.ws.drop();
  await w.clock.advance(1_900);
  assert.ok(w.browser.tabs.has(tabId), 'kept during the grace');
  await w.clock.advance(200);
  assert.ok(finishRemove, 'closing');
  assert.equal(answer, null, 'nobody answered before the tab is gone');
  finishRemove();
  await flush();
  assert.equal(answer.error.code, 'TAB_CLOSED');
  assert.equal(answer.error.data.reason, 'creator-left');
  assert.ok(!w.browser.tabs.has(tabId));
});

test('service-worker restart: state from storage.session, tabs re-attached, instances resume and are told', async () => {
  const w = await world();
  const app1 = await w.newApp();
  const a = w.peer(8765, { name: 'A', graceMs: 5_000 });
  const b = w.peer(8766, { name: 'B', graceMs: 5_000 });
  await w.until(() => app1.conns.size === 2);
  const ta = (await a.request('tabs.create', {})).result.tabId;
  const tb = (await b.request('tabs.create', {})).result.tabId;
  await w.clock.advance(10);
  assert.ok(w.browser.session[STATE_KEY].tabs.length === 2, 'persisted');

  // The worker stops: timers and sockets die with it; the debugger attachments are gone too.
  app1.discovery.stop();
  app1.locks.dispose();
  for (const c of [...app1.conns.values()]) c.ws.drop();
  w.browser.attached.clear();
  b.up = false; // B's process died meanwhile

  const app2 = await w.newApp();
  assert.equal(app2.locks.instance(a.instanceId).status, 'grace');
  assert.ok(w.browser.attached.has(ta), 're-attached at start');
  assert.ok(await w.until(() => app2.conns.size === 1));
  await w.clock.advance(10);
  assert.ok(a.eventsOf('tab.attached').some((e) => e.tabId === ta));
  const list = (await a.request('tabs.list', {})).result.tabs;
  assert.deepEqual(list.map((t) => t.tabId), [ta]);
  assert.equal((await a.request('cdp', { tabId: ta, method: 'Page.getFrameTree' })).result.ok, true);
  // B never came back: after its grace its created tab is closed.
  await w.clock.advance(6_000);
  assert.ok(!w.browser.tabs.has(tb));
  assert.ok(w.browser.tabs.has(ta));
});

/** The old worker and its extension are gone: timers, sockets and debugger sessions die. */
function unload(app, w) {
  app.discovery.stop();
  app.locks.dispose();
  for (const c of [...app.conns.values()]) c.ws.drop();
  w.browser.attached.clear();
}

test('extension reloaded (storage.session cleared): the copy in storage.local resumes every instance on its tabs', async () => {
  const w = await world();
  const app1 = await w.newApp();
  const a = w.peer(8765, { name: 'A', graceMs: 5_000 });
  const b = w.peer(8766, { name: 'B', graceMs: 5_000 });
  await w.until(() => app1.conns.size === 2);
  const created = (await a.request('tabs.create', {})).result.tabId;
  const user = w.browser.addTab({ url: 'https://example.com/' }).id;
  assert.equal((await b.request('tabs.claim', { tabId: user, timeoutMs: 0 })).result.tabId, user);
  await w.clock.advance(10);
  const copy = w.browser.local[STATE_KEY];
  assert.equal(copy.tabs.length, 2, 'the copy in storage.local is kept up to date');
  assert.ok(copy.tabs.every((t) => t.targetId === w.browser.tabs.get(t.tabId).targetId), 'with each tab\'s target id');

  unload(app1, w);
  w.browser.session = {}; // a reload or update clears storage.session

  const app2 = await w.newApp();
  assert.ok(w.browser.attached.has(created) && w.browser.attached.has(user), 're-attached at start');
  assert.ok(await w.until(() => app2.conns.size === 2));
  await w.clock.advance(10);
  assert.ok(a.eventsOf('tab.attached').some((e) => e.tabId === created));
  assert.ok(b.eventsOf('tab.attached').some((e) => e.tabId === user));
  assert.deepEqual((await a.request('tabs.list', {})).result.tabs.map((t) => [t.tabId, t.created]), [[created, true]]);
  assert.deepEqual((await b.request('tabs.list', {})).result.tabs.map((t) => [t.tabId, t.created]), [[user, false]]);
  assert.equal((await b.request('cdp', { tabId: user, method: 'Page.getFrameTree' })).result.ok, true);
  // Still the same locks: A cannot take B's tab, and A's created tab closes when A leaves.
  const busy = a.request('tabs.claim', { tabId: user, timeoutMs: 0 });
  await w.clock.advance(10);
  assert.equal((await busy).error.code, 'TAB_BUSY');
  a.up = false;
  a.ws.drop();
  await w.clock.advance(6_000);
  assert.ok(!w.browser.tabs.has(created), 'a created tab is still closed when its creator leaves');
  assert.ok(w.browser.tabs.has(user));
});

test('a state from storage.local never lands on another browser session\'s tabs (same tab id, other target)', async () => {
  const w = await world();
  const app1 = await w.newApp();
  const a = w.peer(8765, { name: 'A', graceMs: 5_000 });
  await w.until(() => app1.conns.size === 1);
  const t1 = (await a.request('tabs.create', {})).result.tabId;
  const t2 = (await a.request('tabs.create', {})).result.tabId;
  await w.clock.advance(10);
  unload(app1, w);
  // The browser restarts: storage.session is empty, one tab id is gone, the other now
  // names another tab (a new target), e.g. the user's.
  w.browser.session = {};
  w.browser.tabs.delete(t2);
  w.browser.tabs.get(t1).targetId = 'T-another-session';
  w.browser.tabs.get(t1).url = 'https://mail.example/';

  const app2 = await w.newApp();
  assert.equal(app2.locks.tabs.size, 0, 'no record survives');
  assert.ok(!w.browser.attached.has(t1), 'the other session\'s tab is left alone');
  assert.ok(await w.until(() => app2.conns.size === 1));
  assert.equal((await a.request('cdp', { tabId: t1, method: 'Page.getFrameTree' })).error.code, 'TAB_CLOSED');
  assert.deepEqual((await a.request('tabs.list', { all: true })).result.tabs.map((t) => t.holder), [null]);
});

test('a state from storage.local without a target id is not trusted; from storage.session it is', async () => {
  for (const area of ['local', 'session']) {
    const w = await world();
    const app1 = await w.newApp();
    const a = w.peer(8765, { name: 'A', graceMs: 5_000 });
    await w.until(() => app1.conns.size === 1);
    const t = (await a.request('tabs.create', {})).result.tabId;
    await w.clock.advance(10);
    unload(app1, w);
    for (const k of ['local', 'session']) {
      const snap = w.browser[k][STATE_KEY];
      if (snap) for (const r of snap.tabs) delete r.targetId;
    }
    if (area === 'local') w.browser.session = {};
    const app2 = await w.newApp();
    assert.equal(app2.locks.tabs.size, area === 'local' ? 0 : 1, `restored from ${area}`);
    assert.equal(w.browser.attached.has(t), area === 'session');
  }
});

test('log lines carry the request\'s trace id; the last ones are kept, a bounded number', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'Tracer' });
  await w.until(() => app.conns.size === 1);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  const id = a.nextId;
  await a.request('cdp', { tabId, method: 'Page.getFrameTree' });
  const line = app.recentLog.find((l) => l.includes(`[t-${id}]`));
  assert.match(line, new RegExp(`^\\[tabmux\\] Tracer \\[t-${id}\\] cdp Page\\.getFrameTree tab ${tabId} → ok`));
  assert.ok(w.logs.includes(line), 'the same line goes to the console');
  for (let i = 0; i < MAX_RECENT_LOG + 50; i++) app.log('-', null, `line ${i}`);
  assert.equal(app.recentLog.length, MAX_RECENT_LOG);
  assert.equal(app.recentLog[app.recentLog.length - 1], `[tabmux] - line ${MAX_RECENT_LOG + 49}`);
});

test('protocol mismatch is shown and retried only slowly', async () => {
  const w = await world();
  const app = await w.newApp();
  const p = w.peer(8765, { protocol: 2 });
  p.probeBody = () => ({ tabmux: 1, protocol: 1 }); // the probe says 1, the challenge 2
  await w.clock.advance(5_000);
  assert.equal(p.sockets.length, 1, 'one attempt');
  assert.equal(p.hellos.length, 0, 'no hello to a tabmux of another protocol');
  const st = await app.status();
  assert.equal(st.errors[0].code, 'PROTOCOL_MISMATCH');
  assert.match(st.errors[0].message, /protocol 2/);
  p.protocol = 1; // restarted, updated
  assert.ok(await w.until(() => app.conns.size === 1, 40_000));
  assert.equal(p.sockets.length, 2);
});

test('a debugger detached by someone else is re-attached and the holder told', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  w.browser.attached.delete(tabId);
  await app.onDebuggerDetach({ tabId }, 'canceled_by_user');
  await w.clock.advance(300);
  assert.ok(w.browser.attached.has(tabId));
  assert.ok(a.eventsOf('tab.attached').some((e) => e.tabId === tabId));
});

test('too-large CDP results are answered TOO_LARGE', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  for (const c of app.conns.values()) c.maxOutBytes = 10_000;
  w.browser.onCommand = () => ({ data: 'x'.repeat(20_000) });
  const r = await a.request('cdp', { tabId, method: 'Page.captureScreenshot' });
  assert.equal(r.error.code, 'TOO_LARGE');
});

test('a borrowed background tab is shown for a screenshot or a click, then the user\'s tab comes back', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const front = w.browser.addTab({ url: 'https://user.example/', active: true });
  const borrowed = w.browser.addTab({ url: 'https://user.example/other', active: false });
  assert.equal((await a.request('tabs.claim', { tabId: borrowed.id, timeoutMs: 1000 })).result.tabId, borrowed.id);
  const seen = [];
  w.browser.onCommand = (target, method) => {
    seen.push([method, w.browser.tabs.get(target.tabId).active]);
    return { data: 'png' };
  };
  const shot = await a.request('cdp', { tabId: borrowed.id, method: 'Page.captureScreenshot', params: {} });
  assert.deepEqual(shot.result, { data: 'png' });
  await a.request('cdp', { tabId: borrowed.id, method: 'Input.dispatchMouseEvent', params: { type: 'mousePressed' } });
  await a.request('cdp', { tabId: borrowed.id, method: 'Runtime.evaluate', params: {} });
  assert.deepEqual(seen, [
    ['Page.captureScreenshot', true],
    ['Input.dispatchMouseEvent', true],
    ['Runtime.evaluate', false],
  ]);
  assert.equal(w.browser.tabs.get(front.id).active, true, 'the user\'s tab is in front again');
  w.browser.onCommand = null;
});

test('an instance\'s own tab behind another of its tabs comes to the front of its window for input', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  await w.until(() => app.conns.size === 1);
  const first = (await a.request('tabs.create', {})).result.tabId;
  const second = (await a.request('tabs.create', {})).result.tabId;
  assert.equal(w.browser.tabs.get(first).windowId, w.browser.tabs.get(second).windowId, 'one window per instance');
  assert.equal(w.browser.tabs.get(first).active, false);
  const seen = [];
  w.browser.onCommand = (target, method) => {
    seen.push([method, w.browser.tabs.get(target.tabId).active]);
    return {};
  };
  await a.request('cdp', { tabId: first, method: 'Input.dispatchMouseEvent', params: { type: 'mouseMoved' } });
  assert.deepEqual(seen, [['Input.dispatchMouseEvent', true]]);
  assert.equal(w.browser.tabs.get(first).active, true, 'it stays in front of its own window');
  w.browser.onCommand = null;
});

test('a browser tabmux launched takes its port range from config.json', async () => {
  const w = await world();
  w.browser.local.portRange = { from: 9000, to: 9010 };
  w.browser.api.config = async () => ({ ports: { from: 41000, to: 41004 } });
  const app = await w.newApp();
  assert.deepEqual(app.range, { from: 41000, to: 41004 });
  delete w.browser.api.config;
  const w2 = await world();
  w2.browser.local.portRange = { from: 9000, to: 9010 };
  const app2 = await w2.newApp();
  assert.deepEqual(app2.range, { from: 9000, to: 9010 }, 'without config.json the stored range stays');
});

test('a tab opened by a held tab becomes its holder\'s, announced with tab.opened', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765);
  const b = w.peer(8766);
  await w.until(() => app.conns.size === 2);
  const tabId = (await a.request('tabs.create', {})).result.tabId;
  const popup = w.browser.addTab({ url: 'https://example.com/next', active: false });
  await app.onTabCreated({ ...popup, openerTabId: tabId });
  assert.ok(w.browser.attached.has(popup.id), 'attached');
  assert.deepEqual(a.eventsOf('tab.opened'), [{ tabId: popup.id, openerTabId: tabId, url: 'https://example.com/next' }]);
  assert.equal(b.eventsOf('tab.opened').length, 0);
  const listA = (await a.request('tabs.list', {})).result.tabs.map((t) => t.tabId);
  assert.deepEqual(listA, [tabId, popup.id]);
  // The browser brought a new tab to the front: the user's tab comes back.
  const mine = w.browser.addTab({ url: 'https://user.example/front', active: true });
  app.onTabActivated(mine.id, mine.windowId);
  const front = w.browser.addTab({ url: 'https://example.com/front', active: true });
  await app.onTabCreated({ ...front, openerTabId: tabId });
  assert.equal(w.browser.tabs.get(mine.id).active, true, 'the user\'s tab is in front again');
  // A tab opened by a tab nobody holds stays the user's.
  const own = w.browser.addTab({ url: 'https://user.example/' });
  const child = w.browser.addTab({ url: 'https://user.example/2' });
  await app.onTabCreated({ ...child, openerTabId: own.id });
  assert.equal(app.locks.record(child.id), null);
});

test('100 connect/disconnect cycles leave no state behind', async () => {
  const w = await world();
  const app = await w.newApp();
  for (let i = 0; i < 100; i++) {
    const p = w.peer(8765, { instanceId: `cycle-${i}`, graceMs: 100 });
    await w.until(() => app.conns.size === 1, 3_000);
    const t = (await p.request('tabs.create', {})).result.tabId;
    await p.request('cdp', { tabId: t, method: 'Page.getFrameTree' });
    p.up = false;
    p.ws.drop();
    await w.until(() => app.conns.size === 0 && !w.browser.tabs.has(t), 3_000);
    // The port seen empty: the next instance there is tried at once.
    assert.ok(await w.until(() => app.discovery.ports.get(8765).wsFailures === 0, 3_000));
  }
  await w.clock.advance(1_000);
  assert.equal(app.locks.instances.size, 0);
  assert.equal(app.locks.tabs.size, 0);
  assert.equal(app.conns.size, 0);
  assert.equal(app.removedWaiters.size, 0);
  assert.equal(app.reattach.size, 0);
  assert.equal(app.dbg.attached.size, 0);
  assert.equal(app.groups.origin.size, 0);
  assert.equal(w.browser.tabs.size, 0);
  assert.equal(w.browser.session[STATE_KEY].instances.length, 0);
  assert.equal(app.consent.agent.size, 0);
  assert.equal(app.consent.grants.size, 0);
});

// ------------------------------------------------------------------ consent

test('a user tab: the claim waits while the user is asked (badge, notification, popup); Deny fails it', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'Claude Code', userTabs: 'ask' });
  await w.until(() => app.conns.size === 1);
  const bank = w.browser.addTab({ url: 'https://bank.example/account?id=42', title: 'My account' });
  // Before any consent the client sees the title and the origin, not the path.
  const row = (await a.request('tabs.list', { all: true })).result.tabs.find((t) => t.tabId === bank.id);
  assert.equal(row.url, 'https://bank.example/…');
  assert.equal(row.title, 'My account');
  assert.equal(row.user, true);
  assert.equal(row.consent, false);
  const claim = track(a.request('tabs.claim', { tabId: bank.id, timeoutMs: 20_000 }));
  await w.clock.advance(10);
  assert.equal(claim.state, 'pending');
  assert.ok(!w.browser.attached.has(bank.id), 'nothing attached while asking');
  assert.equal(w.browser.badge, '1');
  assert.equal(w.browser.notes.size, 1);
  const st = await app.status();
  assert.equal(st.asks.length, 1);
  assert.equal(st.asks[0].label, 'Claude Code');
  assert.equal(st.asks[0].title, 'My account');
  assert.equal(app.answer(st.asks[0].id, false), true);
  await w.clock.advance(10);
  assert.equal(claim.value.error.code, 'CONSENT_DENIED');
  assert.equal(w.browser.badge, '');
  assert.equal(w.browser.notes.size, 0);
  assert.equal(app.locks.holderOf(bank.id), null);
});

test('Allow grants the claim; the consent lasts through release and re-claim, until the tab is taken back', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A', userTabs: 'ask' });
  const b = w.peer(8766, { name: 'B', userTabs: 'ask' });
  await w.until(() => app.conns.size === 2);
  const mail = w.browser.addTab({ url: 'https://mail.example/inbox?x=1' });
  const claim = track(a.request('tabs.claim', { tabId: mail.id, timeoutMs: 20_000 }));
  await w.clock.advance(10);
  app.onNotificationButton(`tabmux-ask-${(await app.status()).asks[0].id}`, 0); // Allow, from the notification
  await w.clock.advance(10);
  assert.deepEqual(claim.value.result, { tabId: mail.id });
  assert.equal((await a.request('tabs.list', { all: true })).result.tabs.find((t) => t.tabId === mail.id).url, 'https://mail.example/inbox?x=1');
  // B has no consent: still origin only, and B would be asked.
  assert.equal((await b.request('tabs.list', { all: true })).result.tabs.find((t) => t.tabId === mail.id).url, 'https://mail.example/…');
  await a.request('tabs.release', { tabId: mail.id });
  const again = await a.request('tabs.claim', { tabId: mail.id, timeoutMs: 0 });
  assert.deepEqual(again.result, { tabId: mail.id }, 'no second question');
  assert.equal((await app.status()).asks.length, 0);
  // Taken back: A's next command fails with TAKEN_BACK, and a new claim asks again.
  assert.equal(await app.takeBack(mail.id), true);
  await w.clock.advance(10);
  assert.deepEqual(a.eventsOf('tab.takenBack'), [{ tabId: mail.id }]);
  assert.equal((await a.request('cdp', { tabId: mail.id, method: 'Page.getFrameTree' })).error.code, 'TAKEN_BACK');
  assert.ok(!w.browser.attached.has(mail.id));
  assert.ok(w.browser.tabs.has(mail.id), 'the tab stays open');
  const asked = await a.request('tabs.claim', { tabId: mail.id, timeoutMs: 0 });
  assert.equal(asked.error.code, 'CONSENT_TIMEOUT');
});

test('nobody answers: CONSENT_TIMEOUT after the claim\'s timeout; agent tabs and policies allow / deny never ask', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A', userTabs: 'ask' });
  const b = w.peer(8766, { name: 'B', userTabs: 'ask' });
  const d = w.peer(8767, { name: 'D', userTabs: 'deny' });
  const y = w.peer(8768, { name: 'Y', userTabs: 'allow' });
  await w.until(() => app.conns.size === 4);
  const user = w.browser.addTab({ url: 'https://user.example/private' });
  const claim = track(a.request('tabs.claim', { tabId: user.id, timeoutMs: 3_000 }));
  await w.clock.advance(2_900);
  assert.equal(claim.state, 'pending');
  await w.clock.advance(200);
  assert.equal(claim.value.error.code, 'CONSENT_TIMEOUT');
  // deny: at once, without a question.
  const denied = await d.request('tabs.claim', { tabId: user.id, timeoutMs: 30_000 });
  assert.equal(denied.error.code, 'CONSENT_DENIED');
  assert.match(denied.error.message, /--user-tabs deny/);
  assert.equal((await app.status()).asks.length, 0);
  // allow: as before this feature.
  assert.deepEqual((await y.request('tabs.claim', { tabId: user.id, timeoutMs: 0 })).result, { tabId: user.id });
  assert.equal((await y.request('tabs.list', { all: true })).result.tabs.find((t) => t.tabId === user.id).url, 'https://user.example/private');
  // An agent tab (made by a client) is claimed as before, by anyone, after its release.
  const made = (await a.request('tabs.create', { url: 'https://example.com/a?q=1' })).result.tabId;
  await a.request('tabs.release', { tabId: made });
  assert.deepEqual((await b.request('tabs.claim', { tabId: made, timeoutMs: 0 })).result, { tabId: made });
  assert.deepEqual((await d.request('tabs.list', { all: true })).result.tabs.find((t) => t.tabId === made).url, 'https://example.com/a?q=1');
});

test('taking back a created tab: out of the client\'s window and group, into a window of the user\'s, still open', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { name: 'A', userTabs: 'ask' });
  await w.until(() => app.conns.size === 1);
  const t = (await a.request('tabs.create', { url: 'https://example.com/' })).result.tabId;
  await w.clock.advance(10);
  const own = w.browser.tabs.get(t).windowId;
  assert.notEqual(own, 1);
  assert.equal(w.browser.group(t).title, 'A');
  const cmd = track(a.request('cdp', { tabId: t, method: 'Page.getFrameTree' }));
  await app.takeBack(t);
  await w.clock.advance(10);
  assert.equal(cmd.state, 'resolved');
  assert.equal(w.browser.tabs.get(t).windowId, 1, 'in the user\'s window');
  assert.equal(w.browser.group(t), null);
  assert.ok(!w.browser.windows.has(own), 'the client\'s empty window is gone');
  assert.equal((await a.request('cdp', { tabId: t, method: 'Page.getFrameTree' })).error.code, 'TAKEN_BACK');
  // It is the user's tab now: a claim asks.
  assert.equal((await a.request('tabs.claim', { tabId: t, timeoutMs: 0 })).error.code, 'CONSENT_TIMEOUT');
  // The instance leaving does not close it.
  a.up = false;
  a.ws.drop();
  await w.clock.advance(6_000);
  assert.ok(w.browser.tabs.has(t));
});

test('service-worker restart: agent tabs and consents are kept, open questions end with the old worker', async () => {
  const w = await world();
  const app1 = await w.newApp();
  const a = w.peer(8765, { name: 'A', userTabs: 'ask' });
  await w.until(() => app1.conns.size === 1);
  const made = (await a.request('tabs.create', { url: 'https://example.com/' })).result.tabId;
  await a.request('tabs.release', { tabId: made });
  const mail = w.browser.addTab({ url: 'https://mail.example/inbox' });
  const bank = w.browser.addTab({ url: 'https://bank.example/' });
  const claim = track(a.request('tabs.claim', { tabId: mail.id, timeoutMs: 20_000 }));
  await w.clock.advance(10);
  app1.answer((await app1.status()).asks[0].id, true);
  await w.clock.advance(10);
  assert.deepEqual(claim.value.result, { tabId: mail.id });
  await a.request('tabs.release', { tabId: mail.id });
  track(a.request('tabs.claim', { tabId: bank.id, timeoutMs: 20_000 }));
  await w.clock.advance(10);
  assert.equal(w.browser.badge, '1');

  unload(app1, w);
  app1.consent.dispose();
  const app2 = await w.newApp();
  assert.equal(w.browser.badge, '', 'no badge for a question nobody can answer');
  assert.equal((await app2.status()).asks.length, 0);
  assert.ok(await w.until(() => app2.conns.size === 1));
  // The agent tab is claimed as before; the allowed tab without a question; the other asks.
  assert.deepEqual((await a.request('tabs.claim', { tabId: made, timeoutMs: 0 })).result, { tabId: made });
  assert.deepEqual((await a.request('tabs.claim', { tabId: mail.id, timeoutMs: 0 })).result, { tabId: mail.id });
  assert.equal((await a.request('tabs.claim', { tabId: bank.id, timeoutMs: 0 })).error.code, 'CONSENT_TIMEOUT');
});

test('a tabmux with another secret is not served, retried only slowly and reported once', async () => {
  const w = await world();
  const app = await w.newApp();
  const stranger = w.peer(8765, { secret: 'ab'.repeat(32) });
  const mine = w.peer(8766);
  assert.ok(await w.until(() => app.conns.size === 1));
  await w.clock.advance(20_000);
  assert.equal(app.conns.size, 1, 'only our own tabmux');
  assert.ok([...app.conns.values()][0].port === 8766);
  assert.ok(stranger.sockets.length <= 2, `${stranger.sockets.length} attempts in 20 s`);
  assert.equal(stranger.hellos.length, stranger.sockets.length, 'each attempt stopped at its hello');
  // It never got a request, a reply or an event from us.
  for (const s of stranger.sockets) assert.deepEqual(s.messages().map((m) => m.method), ['hello']);
  const st = await app.status();
  assert.equal(st.errors.filter((e) => e.code === 'UNAUTHORIZED').length, 1, 'reported once');
  assert.equal(st.instances.length, 1);
  void mine;
});

test('a tabmux that answers without the right proof is dropped before anything crosses', async () => {
  const w = await world();
  const app = await w.newApp();
  const p = w.peer(8765);
  // A fake tabmux: accepts any hello, answers with a made-up proof.
  p.attach = function attach(ws) {
    this.sockets.push(ws);
    ws.peer = (msg, sock) => {
      if (msg.method === 'hello') {
        this.hellos.push(msg.params);
        sock.receive({ id: msg.id, result: { protocol: 1, proof: 'ff'.repeat(32), instanceId: 'copied-id', name: 'Fake', leaseMs: 1, graceMs: 1 } });
        Promise.resolve().then(() => sock.receive({ id: 99, method: 'tabs.list', params: { all: true } }));
      }
    };
    Promise.resolve().then(() => {
      ws.accept();
      ws.receive({ event: 'challenge', params: { protocol: 1, nonce: '00'.repeat(32) } });
    });
  };
  await w.clock.advance(3_000);
  assert.equal(app.conns.size, 0);
  assert.equal(app.locks.instances.size, 0);
  const sent = p.sockets.flatMap((s) => s.messages());
  assert.deepEqual(sent.filter((m) => m.method).map((m) => m.method), p.sockets.map(() => 'hello'), 'no request but the hello');
  assert.ok(sent.every((m) => m.method || (m.error && m.error.code === 'BAD_REQUEST')), 'no result, no event: only refusals');
  const st = await app.status();
  assert.equal(st.errors[0].code, 'UNAUTHORIZED');
});

test('lease and grace from a hello are clamped', async () => {
  const w = await world();
  const app = await w.newApp();
  w.peer(8765, { instanceId: 'huge', leaseMs: 1e12, graceMs: 1e12 });
  w.peer(8766, { instanceId: 'tiny', leaseMs: 0, graceMs: -5 });
  assert.ok(await w.until(() => app.conns.size === 2));
  assert.equal(app.locks.instance('huge').leaseMs, 600_000);
  assert.equal(app.locks.instance('huge').graceMs, 60_000);
  assert.equal(app.locks.instance('tiny').leaseMs, 1_000);
  assert.equal(app.locks.instance('tiny').graceMs, 0);
});

test('an instance id already connected on another port is refused', async () => {
  const w = await world();
  const app = await w.newApp();
  const a = w.peer(8765, { instanceId: 'same' });
  assert.ok(await w.until(() => app.conns.size === 1));
  const copy = w.peer(8766, { instanceId: 'same' });
  await w.clock.advance(3_000);
  assert.equal(app.conns.get('same').port, 8765, 'the first stays');
  assert.ok(copy.hellos.length >= 1);
  assert.ok(copy.sockets.every((s) => s.readyState === 3), 'the copy was closed');
  assert.equal((await a.request('tabs.list', {})).result.tabs.length, 0);
});

test('without a secret no tabmux is served', async () => {
  const w = await world();
  w.browser.api.config = async () => null;
  const app = await w.newApp();
  const p = w.peer(8765);
  await w.clock.advance(5_000);
  assert.equal(app.conns.size, 0);
  assert.equal(p.sockets.length, 0, 'no socket opened');
  const st = await app.status();
  assert.equal(st.errors[0].code, 'UNAUTHORIZED');
  assert.match(st.errors[0].message, /tabmux extension install/);
});

// ------------------------------------------------------------- pairing (a copy without config.json)

/** TEST_SECRET as `tabmux extension pair` prints it: 8 groups of 8, joined by dashes. */
const CODE = TEST_SECRET.match(/.{8}/g).join('-');

test('pairing codes: grouped, spaced, upper case and wrapped are accepted; anything else is a clear error', () => {
  assert.equal(parsePairingCode(CODE), TEST_SECRET);
  assert.equal(parsePairingCode(` ${CODE.toUpperCase().replaceAll('-', ' ')}\n`), TEST_SECRET);
  assert.equal(parsePairingCode(TEST_SECRET.slice(0, 32) + '\n' + TEST_SECRET.slice(32)), TEST_SECRET);
  assert.throws(() => parsePairingCode(''), /no pairing code given: run `tabmux extension pair`/);
  assert.throws(() => parsePairingCode('  - '), /no pairing code given/);
  assert.throws(() => parsePairingCode(undefined), /no pairing code given/);
  assert.throws(() => parsePairingCode(CODE.slice(0, -1)), /64 hex digits, this one has 63/);
  assert.throws(() => parsePairingCode(CODE + '0'), /this one has 65/);
  assert.throws(() => parsePairingCode(CODE.replace(/.$/, 'g')), /only the digits 0-9 and letters a-f/);
});

async function unpaired() {
  const w = await world();
  w.browser.api.config = async () => null;
  return w;
}

test('an unpaired copy serves nobody; pairing in the popup stores the code and connects at once', async () => {
  const w = await unpaired();
  const app = await w.newApp();
  const p = w.peer(8765);
  await w.clock.advance(3_000);
  assert.equal(app.conns.size, 0);
  assert.equal(p.sockets.length, 0, 'not even a socket before pairing');
  let st = await app.status();
  assert.equal(st.pairing, null);
  assert.match(st.errors[0].message, /tabmux extension pair/);
  await app.pair(CODE);
  assert.equal(w.browser.local[PAIRING_KEY], TEST_SECRET, 'kept in storage.local');
  // Well before the 30 s a port that failed authentication waits.
  assert.ok(await w.until(() => app.conns.size === 1, 1_500), 'connected at once after pairing');
  st = await app.status();
  assert.equal(st.pairing, 'paired');
  assert.equal(st.errors.filter((e) => e.code === 'UNAUTHORIZED').length, 0, 'the "no secret" problem is gone');
  assert.equal((await p.request('tabs.list', {})).result.tabs.length, 0, 'served');
  assert.ok(!w.logs.some((l) => l.includes(TEST_SECRET) || l.includes(CODE.slice(0, 17))), 'the code is never logged');
});

test('a stored pairing outlives a restart of the worker', async () => {
  const w = await unpaired();
  w.browser.local[PAIRING_KEY] = TEST_SECRET;
  const app = await w.newApp();
  w.peer(8765);
  assert.ok(await w.until(() => app.conns.size === 1));
  assert.equal((await app.status()).pairing, 'paired');
});

test('config.json wins over a stored pairing, and such a copy refuses to pair', async () => {
  const w = await world();
  w.browser.local[PAIRING_KEY] = 'ab'.repeat(32);
  const app = await w.newApp();
  w.peer(8765);
  assert.ok(await w.until(() => app.conns.size === 1), 'served with the secret of config.json');
  assert.equal(app.secret, TEST_SECRET);
  assert.equal((await app.status()).pairing, 'config');
  await assert.rejects(app.pair('cd'.repeat(32)), /config\.json .* needs no pairing/);
  assert.equal(app.secret, TEST_SECRET);
  assert.equal(w.browser.local[PAIRING_KEY], 'ab'.repeat(32), 'nothing stored');
  // "Forget pairing" on such a copy drops the stored code, not config.json's secret.
  await app.unpair();
  assert.equal(app.secret, TEST_SECRET);
  assert.equal(app.conns.size, 1);
});

test('a bad code is refused with a clear error and stores nothing', async () => {
  const w = await unpaired();
  const app = await w.newApp();
  await assert.rejects(app.pair('1234'), /64 hex digits, this one has 4/);
  await assert.rejects(app.pair('zz'.repeat(32)), /only the digits 0-9/);
  assert.equal(w.browser.local[PAIRING_KEY], undefined);
  assert.equal(app.secret, null);
  assert.equal((await app.status()).pairing, null);
});

test('another tabmux\'s code: still not served, reported once', async () => {
  const w = await unpaired();
  const app = await w.newApp();
  const p = w.peer(8765);
  await app.pair('ab'.repeat(32));
  await w.clock.advance(3_000);
  assert.equal(app.conns.size, 0);
  assert.ok(p.hellos.length >= 1, 'it tried');
  const st = await app.status();
  assert.equal(st.errors.filter((e) => e.code === 'UNAUTHORIZED' && e.port === 8765).length, 1);
});

test('forget pairing: the code goes, connections close, nothing is served until paired again', async () => {
  const w = await unpaired();
  const app = await w.newApp();
  const p = w.peer(8765);
  await app.pair(CODE);
  assert.ok(await w.until(() => app.conns.size === 1, 1_500));
  await app.unpair();
  assert.equal(w.browser.local[PAIRING_KEY], undefined, 'removed from storage.local');
  assert.equal(app.conns.size, 0);
  assert.ok(p.sockets.every((s) => s.readyState === 3), 'closed');
  const n = p.sockets.length;
  await w.clock.advance(5_000);
  assert.equal(p.sockets.length, n, 'no new connection');
  const st = await app.status();
  assert.equal(st.pairing, null);
  assert.match(st.errors[0].message, /tabmux extension pair/);
  await app.pair(CODE);
  assert.ok(await w.until(() => app.conns.size === 1, 1_500), 'paired again');
});
