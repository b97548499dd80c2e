// Fakes for tests without a browser: a WebSocket whose far end the test plays,
// and a browser API with the shape background.js hands to lib/app.js.

import { TEST_SECRET } from './tabmux-auth.js';

export class FakeWebSocket {
  static all = [];
  static onCreate = null;

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.all.push(this);
    if (FakeWebSocket.onCreate) FakeWebSocket.onCreate(this);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(text);
    if (this.peer) this.peer(JSON.parse(text), this);
  }

  close(code = 1000, reason = '') {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    Promise.resolve().then(() => this.onclose && this.onclose({ code, reason }));
  }

  // ---- the far end
  accept() {
    this.readyState = 1;
    if (this.onopen) this.onopen({});
  }

  receive(msg) {
    if (this.onmessage) this.onmessage({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }

  drop(code = 1006) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.onclose) this.onclose({ code, reason: '' });
  }

  messages() {
    return this.sent.map((t) => JSON.parse(t));
  }
}

/** A browser: tabs, windows, groups, a debugger, storage. */
export class FakeBrowser {
  constructor() {
    this.nextTab = 100;
    this.nextGroup = 1;
    this.tabs = new Map();
    this.windows = new Map([[1, { id: 1, type: 'normal', focused: true }]]);
    this.groupsById = new Map();
    this.attached = new Set();
    this.commands = [];
    this.session = {};
    this.local = {};
    this.keepAlives = 0;
    this.badge = '';
    this.notes = new Map();
    this.onCommand = null; // (target, method, params) → result | Promise
    this.removeDelay = null; // () → Promise before a tab disappears
    this.listeners = { removed: [] };
    const b = this;
    const tabOr = (id) => {
      const t = b.tabs.get(id);
      if (!t) throw new Error(`No tab with id: ${id}.`);
      return t;
    };
    this.api = {
      tabs: {
        get: async (id) => ({ ...tabOr(id) }),
        query: async () => [...b.tabs.values()].map((t) => ({ ...t })),
        create: async ({ windowId, url, active }) => b.addTab({ windowId, url, active }),
        remove: async (id) => {
          tabOr(id);
          if (b.removeDelay) await b.removeDelay(id);
          b.closeTab(id);
        },
        update: async (id, p) => {
          const t = tabOr(id);
          if (p.active) for (const x of b.tabs.values()) if (x.windowId === t.windowId) x.active = x.id === id;
          if (typeof p.url === 'string') t.url = p.url;
          return { ...t };
        },
        group: async ({ tabIds, groupId, createProperties }) => {
          let gid = groupId;
          if (gid == null) {
            gid = b.nextGroup++;
            b.groupsById.set(gid, { id: gid, windowId: createProperties ? createProperties.windowId : tabOr(tabIds[0]).windowId, title: '', color: 'grey' });
          }
          if (!b.groupsById.has(gid)) throw new Error(`No group with id: ${gid}.`);
          for (const id of tabIds) {
            const t = tabOr(id);
            const w = b.windows.get(t.windowId);
            if (w.type !== 'normal') throw new Error('Tabs can only be moved to and from normal windows.');
            t.groupId = gid;
          }
          b.gcGroups();
          return gid;
        },
        ungroup: async (tabIds) => {
          for (const id of tabIds) tabOr(id).groupId = -1;
          b.gcGroups();
        },
        move: async (id, { windowId }) => {
          const t = tabOr(id);
          if (!b.windows.has(windowId)) throw new Error(`No window with id: ${windowId}.`);
          b.moveTab(t, windowId);
          return { ...t };
        },
      },
      action: {
        setBadgeText: async ({ text }) => { b.badge = text; },
        setBadgeBackgroundColor: async () => {},
        setTitle: async () => {},
      },
      notifications: {
        create: async (id, p) => { b.notes.set(id, p); return id; },
        clear: async (id) => b.notes.delete(id),
      },
      windows: {
        get: async (id) => ({ ...b.windows.get(id) }),
        getAll: async () => [...b.windows.values()].filter((w) => w.type === 'normal'),
        getLastFocused: async () => {
          const w = [...b.windows.values()].find((x) => x.focused && x.type === 'normal');
          if (!w) throw new Error('No last-focused window');
          return { ...w };
        },
        create: async ({ url, tabId }) => {
          const id = Math.max(0, ...b.windows.keys()) + 1;
          b.windows.set(id, { id, type: 'normal', focused: false });
          if (tabId != null) {
            b.moveTab(tabOr(tabId), id);
            return { id, tabs: [{ ...tabOr(tabId) }] };
          }
          const tab = b.addTab({ windowId: id, url, active: true });
          return { id, tabs: [tab] };
        },
      },
      tabGroups: {
        get: async (id) => {
          const g = b.groupsById.get(id);
          if (!g) throw new Error(`No group with id: ${id}.`);
          return { ...g };
        },
        query: async ({ windowId, title }) => [...b.groupsById.values()].filter((g) => (windowId == null || g.windowId === windowId) && (title == null || g.title === title)),
        update: async (id, p) => Object.assign(b.groupsById.get(id), p),
      },
      debugger: {
        attach: async (tabId) => {
          const t = tabOr(tabId);
          if (/^chrome:/.test(t.url)) throw new Error('Cannot access a chrome:// URL');
          if (b.attached.has(tabId)) throw new Error(`Another debugger is already attached to the tab with id: ${tabId}.`);
          b.attached.add(tabId);
        },
        detach: async (tabId) => {
          if (!b.attached.delete(tabId)) throw new Error(`Debugger is not attached to the tab with id: ${tabId}.`);
        },
        getTargets: async () => [...b.tabs.values()].map((t) => ({ type: 'page', id: t.targetId, tabId: t.id, url: t.url, attached: b.attached.has(t.id) })),
        sendCommand: async (target, method, params) => {
          if (!b.attached.has(target.tabId)) throw new Error(`Debugger is not attached to the tab with id: ${target.tabId}.`);
          b.commands.push({ target, method, params });
          if (b.onCommand) return b.onCommand(target, method, params);
          if (params && params.nope) throw new Error(JSON.stringify({ code: -32601, message: "'Nope.nope' wasn't found" }));
          return { ok: true, method };
        },
      },
      storage: {
        local: {
          get: async () => ({ ...b.local }),
          set: async (o) => Object.assign(b.local, JSON.parse(JSON.stringify(o))),
          remove: async (k) => {
            for (const key of [].concat(k)) delete b.local[key];
          },
        },
        session: { get: async () => JSON.parse(JSON.stringify(b.session)), set: async (o) => Object.assign(b.session, JSON.parse(JSON.stringify(o))) },
      },
      keepAlive: async () => { b.keepAlives++; },
      // An installed copy's config.json: the secret it shares with tabmux.
      config: async () => ({ secret: TEST_SECRET }),
    };
  }

  addTab({ windowId = 1, url = 'about:blank', active = true, title = '' } = {}) {
    const id = this.nextTab++;
    const t = { id, windowId, url, title: title || url, active: !!active, groupId: -1, targetId: `T${id}-${Math.random().toString(16).slice(2)}` };
    // One tab in front per window.
    if (t.active) for (const x of this.tabs.values()) if (x.windowId === windowId) x.active = false;
    this.tabs.set(id, t);
    return { ...t };
  }

  /** Moves a tab to another window (it leaves its group; a window left empty closes). */
  moveTab(t, windowId) {
    const from = t.windowId;
    t.windowId = windowId;
    t.groupId = -1;
    t.active = false;
    if (![...this.tabs.values()].some((x) => x.windowId === from)) this.windows.delete(from);
    this.gcGroups();
  }

  /** The tab disappears (user or API); listeners hear onRemoved. */
  closeTab(id) {
    if (!this.tabs.delete(id)) return;
    this.attached.delete(id);
    this.gcGroups();
    for (const fn of this.listeners.removed) fn(id);
  }

  gcGroups() {
    for (const g of [...this.groupsById.values()]) if (![...this.tabs.values()].some((t) => t.groupId === g.id)) this.groupsById.delete(g.id);
  }

  group(tabId) {
    const t = this.tabs.get(tabId);
    return t && t.groupId !== -1 ? this.groupsById.get(t.groupId) : null;
  }
}
