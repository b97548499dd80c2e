// The real extension in headless Chromium, driven by mock tabmux instances.
// Runs only with TABMUX_E2E=1 (it needs /usr/bin/chromium and ~1 min):
//   TABMUX_E2E=1 node --test test/e2e.chromium.test.js
// TABMUX_E2E_IDLE=1 adds the 10-minute idle check (a new instance must still
// be connected within 2 s after 10 minutes with no instance).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { launch, worker, stopWorkers, stopWorkersQuietly, waitFor, sleep } from './chromium.js';
import { startMockTabmux } from './mock-tabmux.js';

const RUN = process.env.TABMUX_E2E === '1';
const IDLE = process.env.TABMUX_E2E_IDLE === '1';
const BASE = Number(process.env.TABMUX_E2E_PORT || 18765);

describe('extension in headless Chromium', { skip: !RUN && 'set TABMUX_E2E=1 to run' }, () => {
  let b;
  let w;
  const mocks = [];
  let pages;

  const mock = async (opts) => {
    const m = await startMockTabmux(opts);
    mocks.push(m);
    return m;
  };
  const ok = (r) => {
    assert.ok(r.result, `expected a result, got ${JSON.stringify(r.error)}`);
    return r.result;
  };
  const evalIn = (m, tabId, expression, extra = {}) => m.request('cdp', { tabId, method: 'Runtime.evaluate', params: { expression, returnByValue: true }, ...extra });
  const groupOf = (tabId) => w.evaluate(`chrome.tabs.get(${tabId}).then(t => t.groupId === -1 ? null : chrome.tabGroups.get(t.groupId))`);
  const tabExists = (tabId) => w.evaluate(`chrome.tabs.get(${tabId}).then(() => true, () => false)`);

  before(async () => {
    // Two sites for an out-of-process iframe: 127.0.0.1 embeds localhost.
    pages = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      if (req.url === '/child') res.end('<title>child</title><p>child frame</p>');
      else res.end(`<title>parent</title><h1>parent</h1><iframe src="http://localhost:${pages.address().port}/child"></iframe>`);
    });
    await new Promise((r) => pages.listen(0, '127.0.0.1', r));
    b = await launch();
    w = await worker(b);
    await w.evaluate(`tabmux.setRange(${BASE}, ${BASE + 10})`);
  });

  after(async () => {
    for (const m of mocks) await m.stop();
    if (b) await b.close();
    if (pages) pages.close();
    if (process.env.TABMUX_E2E_LOGS) console.log(b.logs.join('\n'));
  });

  let a;
  let bb;
  let tabA;

  it('connects a new instance within 2 s, hello first with the extension origin', async () => {
    const t0 = Date.now();
    a = await mock({ port: BASE, name: 'Cursor' });
    const hello = await Promise.race([a.connected, sleep(2_000).then(() => null)]);
    assert.ok(hello, 'hello within 2 s');
    assert.equal(hello.protocol, 1);
    assert.match(hello.browser, /^Chrome\/\d+\.\d+\.\d+\.\d+$/);
    assert.match(hello.profileId, /^p-/);
    assert.equal(a.lastOrigin, 'chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd');
    console.log(`# connected ${Date.now() - t0} ms after the instance started`);
  });

  it('tabs.create: in the instance\'s own window, held, attached, in the instance\'s group', async () => {
    const userWindows = await w.evaluate(`chrome.windows.getAll().then(ws => ws.map(w => w.id))`);
    tabA = ok(await a.request('tabs.create', { url: `http://127.0.0.1:${pages.address().port}/` })).tabId;
    const tab = await w.evaluate(`chrome.tabs.get(${tabA})`);
    assert.ok(!userWindows.includes(tab.windowId), 'not in a window the user had');
    assert.equal(tab.active, true, 'in front of its own window');
    assert.equal(ok(await evalIn(a, tabA, '6*7')).result.value, 42);
    await waitFor(async () => (await groupOf(tabA)) !== null);
    assert.equal((await groupOf(tabA)).title, 'Cursor');
    const mine = ok(await a.request('tabs.list', {})).tabs;
    assert.deepEqual(mine.map((t) => [t.tabId, t.mine, t.created]), [[tabA, true, true]]);
  });

  it('a second "Cursor" gets "Cursor 2" in another colour and sees who holds what', async () => {
    bb = await mock({ port: BASE + 1, name: 'Cursor' });
    await bb.connected;
    const t = ok(await bb.request('tabs.create', {})).tabId;
    await waitFor(async () => (await groupOf(t)) !== null);
    const g = await groupOf(t);
    assert.equal(g.title, 'Cursor 2');
    assert.notEqual(g.color, (await groupOf(tabA)).color);
    const all = ok(await bb.request('tabs.list', { all: true })).tabs;
    const seen = all.find((x) => x.tabId === tabA);
    assert.equal(seen.holder.name, 'Cursor');
    assert.equal(seen.mine, false);
    assert.equal((await evalIn(bb, tabA, '1')).error.code, 'NOT_HELD');
    ok(await bb.request('tabs.close', { tabId: t }));
    assert.equal(await tabExists(t), false, 'tabs.close answers after the tab is gone');
  });

  it('claim: TAB_BUSY on timeout, granted on release, CDP events to the holder only', async () => {
    const busy = await bb.request('tabs.claim', { tabId: tabA, timeoutMs: 500 });
    assert.equal(busy.error.code, 'TAB_BUSY');
    assert.equal(busy.error.data.holder.name, 'Cursor');
    assert.equal(busy.error.data.waitingBefore, 0);
    const claim = bb.request('tabs.claim', { tabId: tabA, timeoutMs: 10_000 });
    await sleep(200);
    ok(await a.request('tabs.release', { tabId: tabA }));
    assert.deepEqual(ok(await claim), { tabId: tabA });
    assert.equal((await evalIn(a, tabA, '1')).error.code, 'NOT_HELD');
    ok(await bb.request('cdp', { tabId: tabA, method: 'Page.enable', params: {} }));
    const before = a.events.filter((e) => e.event === 'cdp.event').length;
    ok(await bb.request('cdp', { tabId: tabA, method: 'Page.reload', params: {} }));
    const ev = await bb.waitEvent((e) => e.event === 'cdp.event' && e.params.tabId === tabA && e.params.method === 'Page.loadEventFired');
    assert.ok(ev);
    assert.equal(a.events.filter((e) => e.event === 'cdp.event').length, before);
    await waitFor(async () => ((await groupOf(tabA)) || {}).title === 'Cursor 2');
  });

  it('out-of-process iframes: auto-attached child sessions, commands by sessionId', async () => {
    ok(await bb.request('cdp', { tabId: tabA, method: 'Target.setAutoAttach', params: { autoAttach: true, waitForDebuggerOnStart: false, flatten: true } }));
    const att = await bb.waitEvent((e) => e.event === 'cdp.event' && e.params.method === 'Target.attachedToTarget' && e.params.params.targetInfo.type === 'iframe');
    const sessionId = att.params.params.sessionId;
    const r = ok(await bb.request('cdp', { tabId: tabA, sessionId, method: 'Runtime.evaluate', params: { expression: 'document.title', returnByValue: true } }));
    assert.equal(r.result.value, 'child');
    ok(await bb.request('cdp', { tabId: tabA, sessionId, method: 'Runtime.enable', params: {} }));
    const child = await bb.waitEvent((e) => e.event === 'cdp.event' && e.params.sessionId === sessionId);
    assert.equal(child.params.tabId, tabA);
  });

  it('CDP errors and unattachable tabs', async () => {
    const e = await bb.request('cdp', { tabId: tabA, method: 'Runtime.callFunctionOn', params: { functionDeclaration: '() => 1' } });
    assert.equal(e.error.code, 'CDP_ERROR');
    assert.equal(typeof e.error.data.cdpCode, 'number');
    const { targetId } = await b.cdp.send('Target.createTarget', { url: 'chrome://version/', background: true });
    const all = await waitFor(async () => {
      const l = ok(await bb.request('tabs.list', { all: true })).tabs;
      return l.find((t) => t.url.startsWith('chrome://version')) && l;
    });
    const v = all.find((t) => t.url.startsWith('chrome://version'));
    assert.equal(v.attachable, false);
    const r = await bb.request('tabs.claim', { tabId: v.tabId, timeoutMs: 100 });
    assert.equal(r.error.code, 'NOT_ATTACHABLE');
    assert.equal((await bb.request('tabs.create', { url: 'chrome://settings' })).error.code, 'NOT_ATTACHABLE');
    await b.cdp.send('Target.closeTarget', { targetId });
  });

  it('no escape: other targets, every cookie, the extension\'s own page', async () => {
    const OWN = 'chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd/popup/popup.html';
    const site = `http://127.0.0.1:${pages.address().port}/`;
    await b.cdp.send('Storage.setCookies', { cookies: [{ name: 'secret', value: 's3cr3t', domain: 'example.com', path: '/', httpOnly: true }] });
    const t = ok(await bb.request('tabs.create', { url: site })).tabId;
    for (const [method, params] of [['Network.getAllCookies', {}], ['Storage.getCookies', {}], ['Network.getCookies', { urls: ['https://example.com/'] }],
      ['Target.getTargets', {}], ['Target.createTarget', { url: OWN }], ['Target.attachToTarget', { targetId: 'x', flatten: true }], ['Browser.getVersion', {}], ['SystemInfo.getInfo', {}]]) {
      const r = await bb.request('cdp', { tabId: t, method, params });
      assert.equal(r.error && r.error.code, 'FORBIDDEN_METHOD', `${method}: ${JSON.stringify(r)}`);
      assert.ok(!JSON.stringify(r).includes('s3cr3t'));
    }
    const nav = await bb.request('cdp', { tabId: t, method: 'Page.navigate', params: { url: OWN } });
    assert.equal(nav.error.code, 'FORBIDDEN_URL');
    // The page sends itself there: the browser blocks it, or the extension detaches.
    ok(await evalIn(bb, t, `location.href = ${JSON.stringify(OWN)}; 1`));
    await sleep(500);
    const after = await evalIn(bb, t, 'typeof chrome === "object" && typeof chrome.debugger');
    assert.ok(after.error ? after.error.code === 'FORBIDDEN_PAGE' : after.result.result.value !== 'object', JSON.stringify(after));
    // The user takes the tab there: the extension detaches at once and sends its own tab back.
    await w.evaluate(`chrome.tabs.update(${t}, { url: ${JSON.stringify(OWN)} }).then(() => 1)`);
    await waitFor(async () => (await w.evaluate(`chrome.tabs.get(${t}).then(x => x.url)`)) === 'about:blank');
    const r = await evalIn(bb, t, 'typeof chrome === "object" && typeof chrome.debugger');
    assert.ok(r.error ? r.error.code === 'FORBIDDEN_PAGE' : r.result.result.value !== 'object', JSON.stringify(r));
    ok(await bb.request('tabs.close', { tabId: t }));
  });

  it('malformed frames get BAD_REQUEST and the connection stays', async () => {
    bb.sendRaw('this is not json');
    bb.sendRaw('{"id": 999, "method": "tabs.claim", "params": [1]}');
    bb.sendRaw('{"id": 1000, "method": "no.such"}');
    await waitFor(() => bb.events.some((e) => e.event === 'protocol.error'));
    assert.equal(ok(await bb.request('tabs.list', {})).tabs.length, 1);
  });

  it('the lease: an idle holder loses the tab to a waiter; LOCK_LOST after', async () => {
    const c = await mock({ port: BASE + 2, name: 'Claude Code', leaseMs: 1_500 });
    await c.connected;
    const t = ok(await c.request('tabs.create', {})).tabId;
    await sleep(2_000); // idle past the lease, nobody waiting: kept
    assert.equal(ok(await evalIn(c, t, '1')).result.value, 1);
    const t0 = Date.now();
    const claim = await bb.request('tabs.claim', { tabId: t, timeoutMs: 10_000 });
    assert.deepEqual(ok(claim), { tabId: t });
    assert.ok(Date.now() - t0 >= 1_300, 'granted once the lease ran out');
    const lost = await c.waitEvent((e) => e.event === 'tab.lost');
    assert.equal(lost.params.tabId, t);
    assert.equal(lost.params.to.name, 'Cursor 2');
    assert.equal((await evalIn(c, t, '1')).error.code, 'LOCK_LOST');
    assert.equal((await evalIn(a, t, '1')).error.code, 'NOT_HELD');
    ok(await bb.request('tabs.release', { tabId: t }));
  });

  it('instance.updated renames the group', async () => {
    const t = ok(await a.request('tabs.create', {})).tabId;
    a.sendEvent('instance.updated', { name: 'VS Code' });
    await waitFor(async () => ((await groupOf(t)) || {}).title === 'VS Code');
    ok(await a.request('tabs.close', { tabId: t }));
  });

  it('a dropped connection resumes within the grace: same tabs, tab.attached', async () => {
    const t = ok(await a.request('tabs.create', {})).tabId;
    const again = a.nextHello();
    a.dropConnection();
    await again;
    await a.waitEvent((e) => e.event === 'tab.attached' && e.params.tabId === t);
    assert.ok(ok(await a.request('tabs.list', {})).tabs.some((x) => x.tabId === t));
    assert.equal(ok(await evalIn(a, t, '2')).result.value, 2);
  });

  it('a tab closed by the user: tab.closed to the holder, waiters fail at once', async () => {
    const t = ok(await a.request('tabs.create', {})).tabId;
    const waiting = bb.request('tabs.claim', { tabId: t, timeoutMs: 30_000 });
    await sleep(200);
    const { targetInfos } = await b.cdp.send('Target.getTargets');
    // find the target of that tab through the extension: its URL is unique enough once navigated
    ok(await evalIn(a, t, `location.hash = 'close-me'`));
    const target = await waitFor(async () => (await b.cdp.send('Target.getTargets')).targetInfos.find((x) => x.url.endsWith('#close-me')));
    void targetInfos;
    const t0 = Date.now();
    await b.cdp.send('Target.closeTarget', { targetId: target.targetId });
    const r = await waiting;
    assert.equal(r.error.code, 'TAB_CLOSED');
    assert.ok(Date.now() - t0 < 2_000);
    const ev = await a.waitEvent((e) => e.event === 'tab.closed' && e.params.tabId === t);
    assert.equal(ev.params.reason, 'user');
    assert.equal((await evalIn(a, t, '1')).error.code, 'TAB_CLOSED');
  });

  it('service-worker restart: state restored, instances resume, held tabs re-attached', async () => {
    const t = ok(await bb.request('tabs.create', {})).tabId;
    const hello = bb.nextHello();
    await stopWorkers(b);
    await hello;
    const att = await bb.waitEvent((e) => e.event === 'tab.attached' && e.params.tabId === t);
    assert.ok(att);
    w = await worker(b);
    assert.ok(ok(await bb.request('tabs.list', {})).tabs.some((x) => x.tabId === t));
    assert.equal(ok(await evalIn(bb, t, '3')).result.value, 3);
    const st = await w.evaluate('tabmux.status()');
    assert.ok(st.instances.every((i) => i.connected), JSON.stringify(st.instances.map((i) => [i.label, i.status])));
  });

  it('an instance that leaves: after its grace its created tabs close, then waiters get TAB_CLOSED', async () => {
    const d = await mock({ port: BASE + 3, name: 'Leaver', graceMs: 1_000 });
    await d.connected;
    const t = ok(await d.request('tabs.create', {})).tabId;
    const borrowed = ok(await a.request('tabs.create', {})).tabId;
    ok(await a.request('tabs.release', { tabId: borrowed }));
    ok(await d.request('tabs.claim', { tabId: borrowed, timeoutMs: 1000 }));
    const waitCreated = bb.request('tabs.claim', { tabId: t, timeoutMs: 30_000 });
    const waitBorrowed = a.request('tabs.claim', { tabId: borrowed, timeoutMs: 30_000 });
    await sleep(200);
    await d.stop();
    const r = await waitCreated;
    assert.equal(r.error.code, 'TAB_CLOSED');
    assert.equal(r.error.data.reason, 'creator-left');
    assert.equal(await tabExists(t), false, 'the tab was gone before the waiter heard');
    assert.deepEqual(ok(await waitBorrowed), { tabId: borrowed });
    assert.equal(await tabExists(borrowed), true, 'a borrowed tab is never closed');
  });

  it('protocol mismatch: shown in the status, retried only slowly', async () => {
    const m = await mock({ port: BASE + 4, name: 'Future', protocol: 2 });
    await sleep(3_000);
    assert.ok(m.hellos.length <= 1, `${m.hellos.length} hellos`);
    const st = await w.evaluate('tabmux.status()');
    assert.ok(st.errors.some((e) => e.code === 'PROTOCOL_MISMATCH'), JSON.stringify(st.errors));
  });

  it('a tabmux with another secret (another user\'s) gets nothing, and is not hammered', async () => {
    const stranger = await mock({ port: BASE + 7, name: 'Stranger', secret: 'ab'.repeat(32) });
    await waitFor(() => stranger.refused >= 1, { timeoutMs: 5_000 });
    await sleep(3_000);
    assert.ok(stranger.hellos.length <= 2, `${stranger.hellos.length} hellos in ~3 s`);
    // It asked for the tab list after its made-up answer: no result ever came back.
    assert.ok(stranger.afterRefusal.every((f) => !f.result && !f.event), JSON.stringify(stranger.afterRefusal));
    assert.equal(stranger.events.length, 0);
    const st = await w.evaluate('tabmux.status()');
    assert.ok(!st.instances.some((i) => i.name === 'Stranger'), 'never an instance');
    assert.ok(st.errors.some((e) => e.code === 'UNAUTHORIZED' && e.port === BASE + 7), JSON.stringify(st.errors));
    await stranger.stop();
  });

  it('the popup shows instances and tabs', async () => {
    const { targetId } = await b.cdp.send('Target.createTarget', { url: 'chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd/popup/popup.html' });
    const { sessionId } = await b.cdp.send('Target.attachToTarget', { targetId, flatten: true });
    const text = await waitFor(async () => {
      const r = await b.cdp.send('Runtime.evaluate', { expression: 'document.body.innerText', returnByValue: true }, sessionId);
      return /Cursor 2/.test(r.result.value) && r.result.value;
    });
    assert.match(text, /VS Code/);
    assert.match(text, /PROTOCOL_MISMATCH/);
    // The file:// switch: off by default, kept by the service worker when ticked.
    const click = () => b.cdp.send('Runtime.evaluate', { expression: "document.getElementById('allow-file').click(); document.getElementById('allow-file').checked", returnByValue: true }, sessionId);
    assert.equal(await w.evaluate('tabmux.allowFile'), false);
    assert.equal((await click()).result.value, true);
    await waitFor(async () => (await w.evaluate('tabmux.allowFile')) === true);
    assert.equal((await click()).result.value, false);
    await waitFor(async () => (await w.evaluate('tabmux.allowFile')) === false);
    if (process.env.TABMUX_E2E_SHOT) {
      await b.cdp.send('Emulation.setDeviceMetricsOverride', { width: 440, height: 600, deviceScaleFactor: 1, mobile: false }, sessionId);
      const shot = await b.cdp.send('Page.captureScreenshot', { format: 'png' }, sessionId);
      (await import('node:fs')).writeFileSync(process.env.TABMUX_E2E_SHOT, Buffer.from(shot.data, 'base64'));
    }
    await b.cdp.send('Target.closeTarget', { targetId });
  });

  it('a worker stopped with nothing to wake it is restarted by its alarm, and discovery with it', async () => {
    for (const m of mocks.splice(0)) await m.stop();
    // Every instance's grace runs out; their tabs are closed or released, nothing stays attached.
    await waitFor(async () => (await w.evaluate('tabmux.locks.instances.size + tabmux.locks.tabs.size')) === 0, { timeoutMs: 15_000 });
    await stopWorkersQuietly(b);
    const t0 = Date.now();
    const m = await mock({ port: BASE + 6, name: 'Woken' });
    const hello = await Promise.race([m.connected, sleep(40_000).then(() => null)]);
    assert.ok(hello, 'connected after the alarm woke the worker');
    console.log(`# a stopped worker connected a new instance after ${Date.now() - t0} ms (alarm backstop)`);
    w = await worker(b);
  });

  it('after 10 minutes with no instance, a new one is still connected within 2 s', { skip: !IDLE && 'set TABMUX_E2E_IDLE=1' }, async () => {
    for (const m of mocks.splice(0)) await m.stop();
    await sleep(10 * 60_000 + 5_000);
    const t0 = Date.now();
    const m = await mock({ port: BASE + 5, name: 'Late' });
    const hello = await Promise.race([m.connected, sleep(2_000).then(() => null)]);
    assert.ok(hello, 'connected within 2 s');
    console.log(`# connected ${Date.now() - t0} ms after the instance started, after 10 min idle`);
  });
});
