// No client escapes its tabs: the URL policy, the CDP allow-list, and the App
// refusing and detaching (driven through its request handlers with a fake browser).

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { App, FILE_ACCESS_KEY } from '../lib/app.js';
import { forbiddenReason, checkCommand, isAllowedMethod } from '../lib/confine.js';
import { CDP_METHODS } from '../lib/cdp-methods.js';
import { FakeClock } from './helpers.js';
import { FakeWebSocket, FakeBrowser } from './fakes.js';

const OWN = 'chrome-extension://knlmfncphidfkjhbiidejbkkebcfedhd/popup/popup.html';

test('pages no client may control', () => {
  for (const url of [
    OWN,
    '  CHROME-EXTENSION://knlmfncphidfkjhbiidejbkkebcfedhd/popup/popup.html',
    'chrome-ext\tension://x/y',
    'chrome-extension://aaaabbbbccccddddeeeeffffgggghhhh/page.html',
    'chrome://settings',
    'chrome-untrusted://print/',
    'devtools://devtools/bundled/inspector.html',
    'view-source:chrome-extension://x/popup.html',
    'view-source:view-source:chrome://version',
    'blob:chrome-extension://x/2f8a',
    'filesystem:chrome-extension://x/temporary/a',
    'about:settings',
    'about:version',
    'file:///etc/passwd',
    'view-source:file:///etc/passwd',
  ]) {
    assert.ok(forbiddenReason(url), `${url} is refused`);
  }
  for (const url of ['https://example.com/', 'http://127.0.0.1:8080/x', 'about:blank', 'about:blank#x', 'about:srcdoc', 'data:text/html,<p>a b</p>', 'view-source:https://example.com', 'blob:https://example.com/1', '', null, 'javascript:void 0']) {
    assert.equal(forbiddenReason(url), null, `${url} is allowed`);
  }
  assert.equal(forbiddenReason('file:///tmp/a.html', { allowFile: true }), null, 'file:// once the user allows it');
  assert.ok(forbiddenReason('chrome://version', { allowFile: true }));
});

test('only the CDP commands tabmux uses are relayed', () => {
  for (const m of ['Network.getAllCookies', 'Network.getCookies', 'Storage.getCookies', 'Browser.getVersion', 'Browser.close', 'SystemInfo.getInfo',
    'Target.createTarget', 'Target.attachToTarget', 'Target.setDiscoverTargets', 'Target.getTargets', 'Target.sendMessageToTarget', 'Target.exposeDevToolsProtocol',
    'Page.addScriptToEvaluateOnNewDocument', 'Fetch.enable', 'Network.setCookie', 'Debugger.enable', 'constructor', '__proto__']) {
    assert.equal(isAllowedMethod(m), false, m);
    assert.throws(() => checkCommand(m, {}), (e) => e.code === 'FORBIDDEN_METHOD', m);
  }
  for (const m of CDP_METHODS) assert.ok(!/^(Browser|SystemInfo|Storage)\.|^Target\.(?!setAutoAttach$)|Cookie/.test(m), `${m} does not reach beyond the tab`);
  assert.doesNotThrow(() => checkCommand('Runtime.evaluate', { expression: '1' }));
  assert.throws(() => checkCommand('Page.navigate', { url: OWN }), (e) => e.code === 'FORBIDDEN_URL' && e.message.includes('popup.html'));
  assert.throws(() => checkCommand('Page.navigate', { url: 'file:///etc/passwd' }), (e) => e.code === 'FORBIDDEN_URL');
  assert.doesNotThrow(() => checkCommand('Page.navigate', { url: 'file:///tmp/a.html' }, { allowFile: true }));
  assert.throws(() => checkCommand('Target.setAutoAttach', { autoAttach: true, flatten: false }), (e) => e.code === 'FORBIDDEN_METHOD');
  assert.doesNotThrow(() => checkCommand('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }));
});

test('the list is one string per line, as tabmux reads it', () => {
  const text = readFileSync(new URL('../lib/cdp-methods.js', import.meta.url), 'utf8');
  const quoted = [...text.matchAll(/^ {2}'([A-Za-z]+\.[A-Za-z]+)',$/gm)].map((m) => m[1]);
  assert.deepEqual(quoted, [...CDP_METHODS]);
  assert.deepEqual([...CDP_METHODS].sort(), [...CDP_METHODS], 'sorted');
});

// ------------------------------------------------------------ through the App

const apps = [];
afterEach(() => {
  for (const a of apps.splice(0)) {
    if (a.discovery) a.discovery.stop();
    if (a.locks) a.locks.dispose();
  }
});

/** An App with one connected instance (a fake connection object) and a fake browser. */
async function setup({ local = {} } = {}) {
  const browser = new FakeBrowser();
  Object.assign(browser.local, local);
  const clock = new FakeClock();
  const app = new App({
    api: browser.api,
    WebSocket: FakeWebSocket,
    fetch: async () => {
      throw new TypeError('Failed to fetch');
    },
    clock,
    log: () => {},
    version: '0.1.0',
    randomId: () => 'r1',
  });
  apps.push(app);
  await app.start();
  const events = [];
  const conn = {
    instanceId: 'i-1',
    label: 'A',
    lastHeard: clock.now(),
    lastActivity: clock.now(),
    isOpen: () => true,
    emit: (event, params) => events.push({ event, params }) || true,
  };
  app.conns.set('i-1', conn);
  app.locks.connect('i-1', conn, { name: 'A', leaseMs: 60_000, graceMs: 5_000, port: 1, userTabs: 'allow' });
  const call = (method, params) => app.handlers[method](conn, params).then((result) => ({ result }), (error) => ({ error }));
  return { browser, app, conn, events, call };
}

test('a forbidden method never reaches the browser', async () => {
  const { browser, call } = await setup();
  const { tabId } = (await call('tabs.create', {})).result;
  const before = browser.commands.length;
  for (const method of ['Network.getAllCookies', 'Storage.getCookies', 'Target.createTarget', 'Target.attachToTarget', 'Browser.getVersion']) {
    const r = await call('cdp', { tabId, method, params: { targetId: 'T1', url: OWN } });
    assert.equal(r.error.code, 'FORBIDDEN_METHOD', method);
  }
  assert.equal((await call('cdp', { tabId, method: 'Page.navigate', params: { url: OWN } })).error.code, 'FORBIDDEN_URL');
  assert.equal(browser.commands.length, before, 'nothing was sent');
  assert.equal((await call('tabs.create', { url: OWN })).error.code, 'NOT_ATTACHABLE');
  assert.equal((await call('tabs.create', { url: 'about:settings' })).error.code, 'FORBIDDEN_URL');
  assert.equal((await call('tabs.create', { url: 'file:///etc/passwd' })).error.code, 'FORBIDDEN_URL');
});

test('a created tab that reaches the extension\'s page is detached and sent back to about:blank', async () => {
  const { browser, app, call, events } = await setup();
  const { tabId } = (await call('tabs.create', { url: 'https://example.com/' })).result;
  assert.ok(browser.attached.has(tabId));
  // The tab goes there (the user typed it, a history step): the navigation is seen first.
  await app.onTabUrl(tabId, OWN);
  assert.ok(!browser.attached.has(tabId), 'detached at once');
  assert.equal(browser.tabs.get(tabId).url, 'about:blank', 'sent back');
  await app.onTabUrl(tabId, OWN); // the same navigation seen again (commit, tab update)
  const told = events.filter((e) => e.event === 'tab.forbidden');
  assert.equal(told.length, 1, 'told once');
  assert.deepEqual({ ...told[0].params, reason: undefined }, { tabId, url: OWN, reason: undefined, sentBack: true });
  // Found by the per-command check, too (no navigation event seen).
  browser.tabs.get(tabId).url = OWN;
  const r = await call('cdp', { tabId, method: 'Runtime.evaluate', params: { expression: 'typeof chrome.debugger' } });
  assert.equal(r.error.code, 'FORBIDDEN_PAGE');
  assert.match(r.error.message, /may not control/);
  assert.ok(!browser.attached.has(tabId));
  assert.ok(!browser.commands.some((c) => c.method === 'Runtime.evaluate'), 'no script ran there');
  // Back on an allowed page, it works again.
  browser.tabs.get(tabId).url = 'about:blank';
  assert.ok((await call('cdp', { tabId, method: 'Runtime.evaluate', params: { expression: '1' } })).result);
});

test('a borrowed tab on a forbidden page stays where the user put it and refuses commands', async () => {
  const { browser, app, call } = await setup();
  const user = browser.addTab({ url: 'https://example.com/' });
  assert.ok((await call('tabs.claim', { tabId: user.id, timeoutMs: 0 })).result);
  await app.onTabUrl(user.id, 'chrome://settings/');
  browser.tabs.get(user.id).url = 'chrome://settings/';
  assert.equal(browser.tabs.get(user.id).url, 'chrome://settings/', 'not navigated away');
  assert.ok(!browser.attached.has(user.id));
  assert.equal((await call('cdp', { tabId: user.id, method: 'Page.enable', params: {} })).error.code, 'FORBIDDEN_PAGE');
  // A tab that is only going there (pendingUrl) is refused as well.
  browser.tabs.get(user.id).url = 'https://example.com/';
  browser.tabs.get(user.id).pendingUrl = OWN;
  assert.equal((await call('cdp', { tabId: user.id, method: 'Page.enable', params: {} })).error.code, 'FORBIDDEN_PAGE');
  // Claiming a tab on a forbidden page fails.
  const other = browser.addTab({ url: 'about:version' });
  assert.equal((await call('tabs.claim', { tabId: other.id, timeoutMs: 0 })).error.code, 'FORBIDDEN_PAGE');
});

test('a debugger the browser detached from a tab on a forbidden page is not attached again', async () => {
  const { browser, app, call, events } = await setup();
  const user = browser.addTab({ url: 'https://example.com/' });
  assert.ok((await call('tabs.claim', { tabId: user.id, timeoutMs: 0 })).result);
  browser.tabs.get(user.id).url = 'chrome://settings/';
  browser.attached.delete(user.id);
  await app.onDebuggerDetach({ tabId: user.id }, 'target_closed');
  assert.equal(app.reattach.size, 0, 'no re-attach scheduled');
  assert.equal(events.filter((e) => e.event === 'tab.forbidden').length, 1);
  assert.equal(browser.tabs.get(user.id).url, 'chrome://settings/', 'a borrowed tab stays');
});

test('file:// pages only when the user allows them', async () => {
  const { browser, app, call } = await setup();
  const { tabId } = (await call('tabs.create', {})).result;
  assert.equal((await call('cdp', { tabId, method: 'Page.navigate', params: { url: 'file:///tmp/x.html' } })).error.code, 'FORBIDDEN_URL');
  await app.setFileAccess(true);
  assert.equal(browser.local[FILE_ACCESS_KEY], true, 'kept');
  assert.ok((await call('cdp', { tabId, method: 'Page.navigate', params: { url: 'file:///tmp/x.html' } })).result);
  browser.tabs.get(tabId).url = 'file:///tmp/x.html';
  assert.ok((await call('cdp', { tabId, method: 'Runtime.evaluate', params: {} })).result);
  assert.equal((await app.status()).allowFile, true);
  await app.setFileAccess(false);
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(!browser.attached.has(tabId), 'switched off: detached');
  assert.equal((await call('cdp', { tabId, method: 'Page.navigate', params: { url: 'file:///tmp/y.html' } })).error.code, 'FORBIDDEN_URL');
  // The setting outlives a restart.
  const again = await setup({ local: { [FILE_ACCESS_KEY]: true } });
  assert.equal(again.app.allowFile, true);
});

test('child sessions on forbidden pages and history steps to them are refused', async () => {
  const { browser, app, call } = await setup();
  const { tabId } = (await call('tabs.create', { url: 'https://example.com/' })).result;
  await app.onDebuggerEvent({ tabId }, 'Target.attachedToTarget', { sessionId: 'S1', targetInfo: { targetId: 'F1', type: 'iframe', url: 'chrome-extension://aaaabbbbccccddddeeeeffffgggghhhh/frame.html' } });
  await app.onDebuggerEvent({ tabId }, 'Target.attachedToTarget', { sessionId: 'S2', targetInfo: { targetId: 'F2', type: 'iframe', url: 'https://ads.example/' } });
  assert.equal((await call('cdp', { tabId, sessionId: 'S1', method: 'Runtime.evaluate', params: {} })).error.code, 'FORBIDDEN_PAGE');
  assert.ok((await call('cdp', { tabId, sessionId: 'S2', method: 'Runtime.evaluate', params: {} })).result);
  browser.onCommand = (target, method) => (method === 'Page.getNavigationHistory' ? { currentIndex: 1, entries: [{ id: 1, url: OWN }, { id: 2, url: 'https://example.com/' }] } : {});
  assert.equal((await call('cdp', { tabId, method: 'Page.navigateToHistoryEntry', params: { entryId: 1 } })).error.code, 'FORBIDDEN_URL');
  assert.ok(!browser.commands.some((c) => c.method === 'Page.navigateToHistoryEntry'));
});
