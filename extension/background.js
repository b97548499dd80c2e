// Service worker: wiring only. chrome.* listeners are registered synchronously
// at the top level (so events wake the worker) and handed to lib/app.js.

import { App } from './lib/app.js';

const clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t),
};

const api = {
  tabs: {
    get: (tabId) => chrome.tabs.get(tabId),
    query: (q) => chrome.tabs.query(q),
    create: (p) => chrome.tabs.create(p),
    remove: (tabId) => chrome.tabs.remove(tabId),
    update: (tabId, p) => chrome.tabs.update(tabId, p),
    move: (tabId, p) => chrome.tabs.move(tabId, p),
    group: (p) => chrome.tabs.group(p),
    ungroup: (tabIds) => chrome.tabs.ungroup(tabIds),
  },
  windows: {
    get: (id) => chrome.windows.get(id),
    getAll: (q) => chrome.windows.getAll(q),
    getLastFocused: (q) => chrome.windows.getLastFocused(q),
    create: (p) => chrome.windows.create(p),
  },
  tabGroups: {
    get: (id) => chrome.tabGroups.get(id),
    query: (q) => chrome.tabGroups.query(q),
    update: (id, p) => chrome.tabGroups.update(id, p),
  },
  debugger: {
    attach: (tabId) => chrome.debugger.attach({ tabId }, '1.3'),
    detach: (tabId) => chrome.debugger.detach({ tabId }),
    sendCommand: (target, method, params) => chrome.debugger.sendCommand(target, method, params),
    getTargets: () => chrome.debugger.getTargets(),
  },
  // The badge that says the user is being asked.
  action: {
    setBadgeText: (p) => chrome.action.setBadgeText(p),
    setBadgeBackgroundColor: (p) => chrome.action.setBadgeBackgroundColor(p),
    setTitle: (p) => chrome.action.setTitle(p),
  },
  // System notifications asking the user (where the browser shows them).
  notifications: chrome.notifications && {
    create: (id, p) => chrome.notifications.create(id, { ...p, iconUrl: chrome.runtime.getURL(p.iconUrl) }),
    clear: (id) => chrome.notifications.clear(id),
  },
  storage: {
    local: { get: (k) => chrome.storage.local.get(k), set: (o) => chrome.storage.local.set(o), remove: (k) => chrome.storage.local.remove(k) },
    session: { get: (k) => chrome.storage.session.get(k), set: (o) => chrome.storage.session.set(o) },
  },
  // Settings written by tabmux into a copy of the extension it loads in a browser it
  // launched (absent from a copy the user installed).
  config: () =>
    fetch(chrome.runtime.getURL('config.json'))
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null),
  // Any extension API call resets the worker's idle timer; discovery calls this regularly.
  keepAlive: () => chrome.runtime.getPlatformInfo(),
};

const app = new App({
  api,
  WebSocket,
  fetch: (...a) => fetch(...a),
  clock,
  version: chrome.runtime.getManifest().version,
  userAgent: navigator.userAgent,
  browserVersion: async () => {
    const ua = navigator.userAgentData;
    if (!ua || !ua.getHighEntropyValues) return null;
    const { fullVersionList } = await ua.getHighEntropyValues(['fullVersionList']);
    const b = (fullVersionList || []).find((x) => /^(Google Chrome|Chromium)$/.test(x.brand));
    return b ? `Chrome/${b.version}` : null;
  },
  randomId: () => crypto.randomUUID(),
});

const logErr = (what) => (e) => console.log(`[tabmux] - ${what}: ${e && e.stack ? e.stack : e}`);

// Which tab opened a new one (a popup, a link to a new tab): chrome.tabs' openerTabId
// names the tab in front, not the one whose page opened it.
chrome.webNavigation.onCreatedNavigationTarget.addListener((d) => {
  app.onTabCreated({ id: d.tabId, openerTabId: d.sourceTabId, url: d.url }).catch(logErr('onCreatedNavigationTarget'));
});
// A held tab going to a page no client may control loses its debugger at once:
// before the navigation starts, when it commits, and when the tab's URL changes.
chrome.webNavigation.onBeforeNavigate.addListener((d) => {
  if (d.frameId === 0) app.onTabUrl(d.tabId, d.url).catch(logErr('onBeforeNavigate'));
});
chrome.webNavigation.onCommitted.addListener((d) => {
  if (d.frameId === 0) app.onTabUrl(d.tabId, d.url).catch(logErr('onCommitted'));
});
chrome.tabs.onUpdated.addListener((tabId, change) => {
  if (change.url) app.onTabUrl(tabId, change.url).catch(logErr('onUpdated'));
});
chrome.tabs.onActivated.addListener(({ tabId, windowId }) => {
  app.onTabActivated(tabId, windowId);
});
chrome.tabs.onRemoved.addListener((tabId) => {
  app.onTabRemoved(tabId).catch(logErr('onRemoved'));
});
chrome.tabs.onReplaced.addListener((addedTabId, removedTabId) => {
  app.onTabRemoved(removedTabId).catch(logErr('onReplaced'));
});
chrome.debugger.onEvent.addListener((source, method, params) => {
  app.onDebuggerEvent(source, method, params).catch(logErr('debugger.onEvent'));
});
chrome.debugger.onDetach.addListener((source, reason) => {
  app.onDebuggerDetach(source, reason).catch(logErr('debugger.onDetach'));
});

if (chrome.notifications) {
  chrome.notifications.onButtonClicked.addListener((id, buttonIndex) => {
    app.ready.then(() => app.onNotificationButton(id, buttonIndex)).catch(logErr('notifications'));
  });
}

// Backstop: if the worker was stopped anyway, an alarm wakes it and discovery restarts.
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === 'tabmux-wake') app.wake().catch(logErr('wake'));
});
chrome.alarms.get('tabmux-wake').then((a) => {
  if (!a) chrome.alarms.create('tabmux-wake', { periodInMinutes: 0.5 });
});
chrome.runtime.onStartup.addListener(() => {});
chrome.runtime.onInstalled.addListener(() => {});

// The popup asks for the status, answers the user's questions, takes tabs back, pairs and sets the port range.
chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (!msg || sender.id !== chrome.runtime.id) return false;
  if (msg.type === 'status') {
    app.status().then(sendResponse, (e) => sendResponse({ error: e.message }));
    return true;
  }
  if (msg.type === 'consent') {
    app.ready.then(() => sendResponse({ ok: app.answer(msg.id, msg.allow) }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  if (msg.type === 'takeBack') {
    app.takeBack(msg.tabId).then((ok) => sendResponse({ ok }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  if (msg.type === 'setFileAccess') {
    app.setFileAccess(msg.allow === true).then(() => sendResponse({ ok: true }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  // Pairing a copy without config.json (the store's) with the code of `tabmux extension pair`.
  if (msg.type === 'pair') {
    app.pair(String(msg.code || '')).then(() => sendResponse({ ok: true }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  if (msg.type === 'unpair') {
    app.unpair().then(() => sendResponse({ ok: true }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  if (msg.type === 'setRange') {
    app.setRange(msg.from, msg.to).then(() => sendResponse({ ok: true }), (e) => sendResponse({ error: e.message }));
    return true;
  }
  return false;
});

app.start().catch(logErr('start'));

// For tests through the DevTools protocol (Runtime.evaluate in this worker).
globalThis.tabmux = app;
