// The extension's core: discovery → one Connection per instance → requests
// (tabs.*, cdp) → lock manager, debugger, tab groups. No chrome.* here: every
// browser API comes in through `api` (see background.js for its shape), time
// through `clock`, sockets through `WebSocket`, HTTP through `fetch`.

import { trimResult } from './trim.js';
import { Codes, TabmuxError } from './errors.js';
import { LockManager } from './locks.js';
import { Consent, originOnly } from './consent.js';
import { Discovery, DEFAULT_RANGE, httpProbe, validRange } from './discovery.js';
import { Connection } from './connection.js';
import { Debuggers, isAttachableUrl, notAttachable, classifyCommandError, isNotAttachedError } from './debugger.js';
import { GroupPainter, NO_GROUP } from './groups.js';
import { PROTOCOL_VERSION } from './codec.js';
import { PROTOCOL } from './protocol.js';
import { PAIRING_KEY, isHex64, parsePairingCode } from './auth.js';
import { Sessions, checkCommand, forbiddenPage, forbiddenReason, forbiddenUrl } from './confine.js';

export const STATE_KEY = 'tabmuxLocks';
/** Agent tabs and the user's consents (storage.session only: a new browser session starts with none). */
export const CONSENT_KEY = 'tabmuxConsent';
/** Prefix of the system notifications that ask the user. */
export const ASK_NOTIFICATION = 'tabmux-ask-';
export const RANGE_KEY = 'portRange';
/** The user's choice in the popup: may clients open file:// pages (default: no). */
export const FILE_ACCESS_KEY = 'allowFileUrls';
/** CDP commands that need the tab rendered (a hidden tab gets no frames). */
const NEEDS_FRAMES = new Set(PROTOCOL.needsFrames);
export const PROFILE_KEY = 'profileId';
export { PAIRING_KEY };
const NO_SECRET =
  'this copy of the extension has no secret: pair it (run `tabmux extension pair` and paste the code here, under "Pair with tabmux") or install it with `tabmux extension install DIR`; until then it serves no tabmux';
const REATTACH_DELAYS_MS = [200, 1_000, 2_000, 4_000, 8_000];
const MAX_COMMAND_MS = 120_000;
const CLOSE_WAIT_MS = 3_000;
const MAX_ERRORS = 20;
/** The lease and grace an instance may ask for in its hello are clamped to these. */
export const LEASE_MIN_MS = PROTOCOL.limits.leaseMinMs;
export const LEASE_MAX_MS = PROTOCOL.limits.leaseMaxMs;
export const GRACE_MAX_MS = PROTOCOL.limits.graceMaxMs;
export const MAX_RECENT_LOG = 500;
/**
 * A waiter whose connection has been silent this long is not handed a tab
 * (both sides ping at least every 20 s, so a live connection is never this quiet).
 */
const WAITER_SILENCE_MS = 35_000;

function clamp(v, lo, hi, dflt) {
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, Math.round(v))) : dflt;
}

function bad(message) {
  return new TabmuxError(Codes.BAD_REQUEST, message);
}

function intParam(p, name) {
  const v = p[name];
  if (!Number.isSafeInteger(v) || v < 0) throw bad(`${name} must be a tab id (a non-negative integer)`);
  return v;
}

/** "Chrome/156.0.8078.108" from a user agent string. */
export function browserFromUserAgent(ua) {
  const m = /(?:Chrome|Chromium)\/(\d+(?:\.\d+)*)/.exec(ua || '');
  return m ? `Chrome/${m[1]}` : 'Chrome/unknown';
}

export class App {
  constructor({ api, WebSocket, fetch, clock, log, version = '0.0.0', userAgent = '', browserVersion = null, randomId }) {
    this.api = api;
    this.WebSocket = WebSocket;
    this.fetch = fetch;
    this.clock = clock;
    this._log = log || ((line) => console.log(line)); // eslint-disable-line no-console
    this.version = version;
    this.userAgent = userAgent;
    this.browserVersion = browserVersion; // async () → "Chrome/156.0.8078.108" (the UA string is reduced to x.0.0.0)
    this.browser = browserFromUserAgent(userAgent);
    this.randomId = randomId;
    /** instanceId → its current open Connection. */
    this.conns = new Map();
    /** Connections being opened (before hello). */
    this.attempts = new Set();
    this.errors = [];
    /** The last log lines, newest last (to follow a trace id without a console). */
    this.recentLog = [];
    this.removedWaiters = new Map();
    this.reattach = new Map();
    this.range = { ...DEFAULT_RANGE };
    this.userFront = new Map(); // windowId -> the user's last tabs in front
    this.ownWindows = new Map(); // windowId -> the instance tabmux opened it for
    this.opened = new Map(); // tabId -> when a held tab's page opened it
    this.profileId = null;
    /** The secret shared with tabmux (config.json, else the pairing code); without it no instance is served. */
    this.secret = null;
    /** Where the secret came from: 'config' (config.json, wins), 'paired' (the popup's pairing code) or null. */
    this.secretFrom = null;
    this.allowFile = false;
    this.sessions = new Sessions();
    /** tabId → {url, reason}: held tabs the extension detached from a forbidden page. */
    this.confined = new Map();
    this.locks = null;
    this.consent = null;
    /** askIds with a system notification on screen. */
    this.notified = new Set();
    this.discovery = null;
    this.dbg = new Debuggers({ api: api.debugger, log: (m) => this.log('-', null, m) });
    this.groups = new GroupPainter({
      api,
      clock,
      identity: (id) => {
        const i = this.locks && this.locks.instance(id);
        return i ? { label: i.label, color: i.color } : null;
      },
      log: (m) => this.log('-', null, m),
    });
    this.handlers = {
      'tabs.list': (c, p) => this.tabsList(c, p),
      status: () => this.status().then(({ instances, tabs }) => ({ instances, tabs })),
      'tabs.create': (c, p) => this.tabsCreate(c, p),
      'tabs.claim': (c, p) => this.tabsClaim(c, p),
      'tabs.release': (c, p) => this.tabsRelease(c, p),
      'tabs.close': (c, p) => this.tabsClose(c, p),
      'tabs.activate': (c, p) => this.tabsActivate(c, p),
      cdp: (c, p) => this.cdp(c, p),
    };
    this._lastWrite = Promise.resolve();
    this.ready = new Promise((r) => {
      this._markReady = r;
    });
  }

  log(label, trace, msg) {
    const line = `[tabmux] ${label}${trace ? ` [${trace}]` : ''} ${msg}`;
    this.recentLog.push(line);
    while (this.recentLog.length > MAX_RECENT_LOG) this.recentLog.shift();
    this._log(line);
  }

  _error(port, label, code, message) {
    this.errors.push({ at: this.clock.now(), port, label, code, message });
    while (this.errors.length > MAX_ERRORS) this.errors.shift();
  }

  // ------------------------------------------------------------------ startup

  async start() {
    if (this.browserVersion) {
      try {
        this.browser = (await this.browserVersion()) || this.browser;
      } catch {
        /* keep the UA's */
      }
    }
    const local = (await this.api.storage.local.get([PROFILE_KEY, RANGE_KEY, STATE_KEY, FILE_ACCESS_KEY, PAIRING_KEY])) || {};
    this.allowFile = local[FILE_ACCESS_KEY] === true;
    this.profileId = local[PROFILE_KEY];
    if (typeof this.profileId !== 'string' || !this.profileId) {
      this.profileId = `p-${this.randomId()}`;
      await this.api.storage.local.set({ [PROFILE_KEY]: this.profileId });
    }
    const r = local[RANGE_KEY];
    if (r && validRange(r.from, r.to)) this.range = { from: r.from, to: r.to };
    // config.json: the secret (every installed copy) and, in a browser tabmux launched
    // for its clients, its port range (which wins).
    if (this.api.config) {
      try {
        const cfg = await this.api.config();
        if (cfg && isHex64(cfg.secret)) {
          this.secret = cfg.secret;
          this.secretFrom = 'config';
        }
        const p = cfg && cfg.ports;
        if (p && validRange(p.from, p.to)) this.range = { from: p.from, to: p.to };
        if (cfg && cfg.managed === true) this.managed = true;
      } catch {
        /* no settings */
      }
    }
    // A copy without config.json (the store's): the code the user pasted in the popup.
    if (!this.secret && isHex64(local[PAIRING_KEY])) {
      this.secret = local[PAIRING_KEY];
      this.secretFrom = 'paired';
    }
    if (!this.secret) this._noSecret();

    // The state lives in storage.session (a stopped service worker finds it there) and
    // in a copy in storage.local, which outlives a reload or update of the extension
    // (they clear storage.session) — and a browser restart, hence the checks below.
    let stored = null;
    let from = 'session';
    try {
      stored = ((await this.api.storage.session.get(STATE_KEY)) || {})[STATE_KEY] || null;
    } catch (e) {
      this.log('-', null, `reading stored state failed: ${e.message}`);
    }
    if (!stored && local[STATE_KEY]) {
      stored = local[STATE_KEY];
      from = 'local';
    }
    this.locks = LockManager.restore(stored, { clock: this.clock, hooks: this._lockHooks(), log: (l, m) => this.log(l, null, m) });
    let consent = null;
    try {
      consent = ((await this.api.storage.session.get(CONSENT_KEY)) || {})[CONSENT_KEY] || null;
    } catch (e) {
      this.log('-', null, `reading stored consents failed: ${e.message}`);
    }
    this.consent = Consent.restore(consent, {
      clock: this.clock,
      hooks: { asked: (asks) => this._showAsks(asks), persist: () => this._persistConsent() },
      log: (l, m) => this.log(l, null, m),
    });
    // Questions of a stopped worker died with it: no badge left from them.
    this._showAsks([]);
    // The user's tabs in front now (later changes come from tabs.onActivated).
    try {
      for (const t of (await this.api.tabs.query({ active: true })) || []) {
        if (t.active && !this.locks.record(t.id)) this.userFront.set(t.windowId, [t.id]);
      }
    } catch {
      /* no tabs API in this context */
    }
    if (this.locks.tabs.size || this.locks.instances.size) {
      const why = from === 'local' ? ' (the extension was reloaded or updated, or the browser restarted)' : '';
      this.log('-', null, `restored ${this.locks.instances.size} instances and ${this.locks.tabs.size} held tabs${why}; each has its grace period to reconnect`);
    }
    // Tabs closed meanwhile. A tab id can come again in another browser session, a
    // target id cannot: a state from storage.local keeps only tabs whose target it knows.
    try {
      const alive = new Set((await this.api.tabs.query({})).map((t) => t.id));
      this.consent.retainTabs(alive);
      const targets = await this._targets();
      for (const rec of [...this.locks.tabs.values()]) {
        const now = targets && targets.get(rec.tabId);
        const same = !!rec.targetId && now === rec.targetId;
        const other = !!rec.targetId && !!now && now !== rec.targetId;
        if (!alive.has(rec.tabId) || other || (from === 'local' && !same)) this.locks.tabRemoved(rec.tabId);
      }
    } catch (e) {
      this.log('-', null, `reconciling tabs failed: ${e.message}`);
    }
    this.locks.resume();
    // Held tabs get their debugger back at once; their holders are told
    // (tab.attached) when they reconnect.
    for (const rec of this.locks.tabs.values()) {
      if (rec.closing) continue;
      const { tabId, holder } = rec;
      this.locks.serial(tabId, async () => {
        try {
          const tab = await this.api.tabs.get(tabId);
          await this.dbg.attach(tabId, tab.url, holder);
        } catch (e) {
          this.log('-', null, `re-attaching tab ${tabId} failed: ${e.message}`);
        }
      });
    }
    this.discovery = new Discovery({
      clock: this.clock,
      range: this.range,
      probe: (port) => httpProbe(this.fetch, port, { setTimeout: (f, ms) => this.clock.setTimeout(f, ms), clearTimeout: (t) => this.clock.clearTimeout(t) }),
      connect: (port, body) => this.connect(port, body),
      onGone: (port, instanceId) => this.instanceGone(instanceId),
      onMismatch: (port, body, message) => {
        this.log(`port ${port}`, null, message);
        this._error(port, '', Codes.PROTOCOL_MISMATCH, message);
      },
      onForeign: (port, message) => {
        if (!this.secret) return;
        this.log(`port ${port}`, null, `ignored: ${message}`);
        this._error(port, '', Codes.UNAUTHORIZED, message);
      },
      keepAlive: () => this.api.keepAlive(),
      log: (m) => this.log('-', null, m),
    });
    this.discovery.start();
    this._markReady();
  }

  _noSecret() {
    const msg = NO_SECRET;
    this.log('-', null, msg);
    this._error(0, '', Codes.UNAUTHORIZED, msg);
  }

  /**
   * The popup's pairing: `code` is what `tabmux extension pair` printed. Kept in
   * storage.local; discovery starts over at once. A copy with config.json keeps that
   * secret (it wins) and refuses. The code itself is never logged.
   */
  async pair(code) {
    await this.ready;
    if (this.secretFrom === 'config') {
      throw new Error('this copy of the extension has its secret in config.json (written by `tabmux extension install`); it needs no pairing');
    }
    const secret = parsePairingCode(code);
    await this.api.storage.local.set({ [PAIRING_KEY]: secret });
    const changed = secret !== this.secret;
    this.secret = secret;
    this.secretFrom = 'paired';
    this.errors = this.errors.filter((e) => !(e.port === 0 && e.code === Codes.UNAUTHORIZED));
    // Instances authenticated with another code belong to another tabmux: they go.
    if (changed) this._dropConnections('paired with another code');
    this.log('-', null, 'paired with tabmux (a code from `tabmux extension pair`)');
    this.discovery.retryAll();
  }

  /** The popup's "forget pairing": the stored code goes, and with it every connection. */
  async unpair() {
    await this.ready;
    if (this.api.storage.local.remove) await this.api.storage.local.remove(PAIRING_KEY);
    else await this.api.storage.local.set({ [PAIRING_KEY]: null });
    if (this.secretFrom !== 'paired') return;
    this.secret = null;
    this.secretFrom = null;
    this._dropConnections('pairing forgotten');
    this.log('-', null, 'pairing forgotten');
    this._noSecret();
  }

  _dropConnections(reason) {
    for (const c of [...this.attempts, ...this.conns.values()]) c.close(4005, reason);
  }

  /** chrome.alarms backstop: make sure discovery runs. */
  async wake() {
    await this.ready;
    this.discovery.kick();
  }

  async setRange(from, to) {
    if (!validRange(from, to)) throw new Error(`invalid port range ${from}–${to} (1024–65535, at most 64 ports)`);
    await this.ready;
    this.range = { from, to };
    await this.api.storage.local.set({ [RANGE_KEY]: { from, to } });
    this.discovery.setRange(from, to);
  }

  /** The popup's file:// switch. */
  async setFileAccess(allow) {
    await this.ready;
    this.allowFile = allow === true;
    await this.api.storage.local.set({ [FILE_ACCESS_KEY]: this.allowFile });
    this.log('-', null, `file:// pages ${this.allowFile ? 'allowed' : 'refused'} (popup setting)`);
    // Held tabs showing a file:// page lose their debugger now.
    if (!this.allowFile) {
      for (const rec of this.locks.tabs.values()) {
        this.api.tabs.get(rec.tabId).then((t) => this.onTabUrl(t.id, t.url), () => {});
      }
    }
  }

  _policy() {
    return { allowFile: this.allowFile };
  }

  /** Why a tab may not be controlled (its URL, or the one it is going to), or null. */
  _tabForbidden(tab) {
    for (const url of [tab.url, tab.pendingUrl]) {
      const why = forbiddenReason(url, this._policy());
      if (why) return { url, why };
    }
    return null;
  }

  /**
   * A held tab shows (or goes to) a page no client may control: the debugger is
   * detached at once. A tab the instance created goes back to about:blank (nothing of
   * the user's is there); a borrowed tab stays as the user has it, and its commands
   * fail with FORBIDDEN_PAGE until it shows an allowed page again.
   */
  async onTabUrl(tabId, url) {
    if (!this.locks) return;
    const why = forbiddenReason(url, this._policy());
    const rec = this.locks.record(tabId);
    if (!why || !rec || rec.closing) return;
    this._cancelReattach(tabId);
    this.sessions.forget(tabId);
    const was = await this.dbg.detach(tabId);
    // One navigation is seen up to three times (before, commit, tab update): tell once.
    const first = !this.confined.has(tabId);
    this.confined.set(tabId, { url: String(url).slice(0, 200), why });
    const label = (this.locks.holderOf(tabId) || {}).name || '-';
    this.log(label, null, `tab ${tabId} went to ${String(url).slice(0, 80)} (${why}): debugger ${was ? 'detached' : 'not attached'}${rec.created ? ', tab sent back to about:blank' : ''}`);
    const conn = this.conns.get(rec.holder);
    if ((was || first) && this._isCurrent(conn)) conn.emit('tab.forbidden', { tabId, url: String(url).slice(0, 200), reason: why, sentBack: !!rec.created });
    if (rec.created) await this.api.tabs.update(tabId, { url: 'about:blank' }).catch(() => {});
  }

  // -------------------------------------------------------------- connections

  helloParams() {
    const p = {
      protocol: PROTOCOL_VERSION,
      extensionVersion: this.version,
      browser: this.browser,
      profileId: this.profileId,
    };
    // A browser tabmux launched for its clients (it loaded a copy with config.json).
    if (this.managed) p.managed = true;
    return p;
  }

  async connect(port) {
    const conn = new Connection({
      port,
      WebSocket: this.WebSocket,
      clock: this.clock,
      hello: this.helloParams(),
      secret: this.secret,
      onRequest: (c, m) => this._onRequest(c, m),
      onEvent: (c, m) => this._onEvent(c, m),
      onClose: (c, info) => this._onClose(c, info),
      log: (l, t, m) => this.log(l, t, m),
    });
    this.attempts.add(conn);
    const res = await conn.open();
    this.attempts.delete(conn);
    if (!res.ok) {
      if (res.mismatch) {
        this.log(`port ${port}`, null, `protocol mismatch: ${res.message}`);
        this._error(port, (res.hello && res.hello.name) || '', Codes.PROTOCOL_MISMATCH, res.message || 'protocol mismatch');
      }
      return res;
    }
    const id = conn.instanceId;
    const hello = res.hello;
    const old = this.conns.get(id);
    if (old && old !== conn && old.isOpen() && old.port !== port) {
      const message = `instance ${id} is already connected on port ${old.port}; refused on port ${port}`;
      this.log(old.label, null, message);
      conn.close(4006, 'instance already connected on another port');
      return { ok: false, foreign: true, message };
    }
    const leaseMs = clamp(hello.leaseMs, LEASE_MIN_MS, LEASE_MAX_MS, PROTOCOL.defaults.leaseMs);
    const graceMs = clamp(hello.graceMs, 0, GRACE_MAX_MS, PROTOCOL.defaults.graceMs);
    hello.leaseMs = leaseMs;
    hello.graceMs = graceMs;
    this.conns.set(id, conn);
    const { resumed, tabs } = this.locks.connect(id, conn, {
      name: hello.name,
      leaseMs,
      graceMs,
      port,
      userTabs: hello.userTabs,
    });
    if (old && old !== conn) old.close(4003, 'replaced by a newer connection of the same instance');
    conn.label = this.locks.instance(id).label;
    this.log(conn.label, null, `${resumed ? 'resumed' : 'connected'} on port ${port} (pid ${hello.pid}, tabmux ${hello.version}, lease ${hello.leaseMs} ms, grace ${hello.graceMs} ms, user tabs: ${this.locks.instance(id).userTabs})`);
    // Its held tabs: make sure the debugger is attached and tell it to re-enable its domains.
    for (const tabId of tabs) {
      this.locks.serial(tabId, async () => {
        try {
          await this._attachFor(tabId, id);
          if (conn.isOpen()) conn.emit('tab.attached', { tabId });
        } catch (e) {
          this.log(conn.label, null, `tab ${tabId}: ${e.message}`);
        }
      });
    }
    if (tabs.length) this.groups.repaint(id, tabs);
    return { ok: true, instanceId: id };
  }

  _onClose(conn, info) {
    this.attempts.delete(conn);
    const id = conn.instanceId;
    if (!id) return;
    if (this.conns.get(id) === conn) this.conns.delete(id);
    if (info.wasOpen) this.log(conn.label, null, `connection closed (${info.code || 'no code'}${info.reason ? ` ${info.reason}` : ''})`);
    if (this.locks) this.locks.disconnect(id, conn);
    if (this.consent) this.consent.connectionClosed(id, conn);
    if (this.discovery) this.discovery.disconnected(conn.port, id, { livedMs: info.livedMs });
  }

  /** The port now answers another instance: the old one is gone for good. */
  instanceGone(instanceId) {
    const c = this.conns.get(instanceId);
    if (c) c.close(4004, 'instance replaced');
    this.locks.gone(instanceId);
  }

  _isCurrent(conn) {
    return !!conn && conn.isOpen() && this.conns.get(conn.instanceId) === conn;
  }

  _onEvent(conn, m) {
    if (!this._isCurrent(conn)) return;
    if (m.event === 'instance.updated') {
      const name = m.params && m.params.name;
      if (typeof name !== 'string') return;
      this.locks.rename(conn.instanceId, name);
      conn.label = this.locks.instance(conn.instanceId).label;
      this.log(conn.label, null, `renamed (client name "${name}")`);
      return;
    }
    this.log(conn.label, null, `ignored event ${m.event}`);
  }

  _onRequest(conn, m) {
    const handler = Object.prototype.hasOwnProperty.call(this.handlers, m.method) ? this.handlers[m.method] : null;
    if (!handler) {
      conn.replyError(m.id, bad(`unknown method ${String(m.method).slice(0, 60)}`));
      return;
    }
    if (!this._isCurrent(conn)) return;
    const started = this.clock.now();
    const what = m.method === 'cdp' ? `cdp ${String(m.params.method).slice(0, 60)} tab ${m.params.tabId}` : `${m.method}${m.params.tabId !== undefined ? ` tab ${m.params.tabId}` : ''}`;
    Promise.resolve()
      .then(() => handler(conn, m.params, m))
      // A tabs.* answer reports a decision: it goes out only once that decision is
      // stored, so a worker restart can never forget what an instance was told.
      .then((result) => (m.method === 'cdp' ? result : this._lastWrite.then(() => result)))
      .then(
        (result) => {
          const sent = conn.reply(m.id, result);
          this.log(conn.label, m.trace, `${what} → ok in ${this.clock.now() - started} ms${sent ? '' : ' (its connection is gone: reply dropped)'}`);
        },
        (err) => {
          const sent = conn.replyError(m.id, err);
          const code = (err && err.code) || Codes.INTERNAL;
          this.log(conn.label, m.trace, `${what} → ${code}${err && err.message ? `: ${err.message}` : ''}${sent ? '' : ' (reply dropped)'}`);
          if (!(err instanceof TabmuxError)) this.log(conn.label, m.trace, `internal: ${err && err.stack}`);
        },
      );
  }

  // ---------------------------------------------------------------- the locks

  _lockHooks() {
    return {
      isOpen: (c) => this._isCurrent(c) && this.clock.now() - c.lastHeard < WAITER_SILENCE_MS,
      emit: (id, conn, event, params) => conn.emit(event, params),
      prepareGrant: async (tabId, id) => {
        await this._attachFor(tabId, id);
        this._joinGroup(tabId, id);
      },
      released: async (tabId, id, { handedTo, origGroupId, takenBack, created }) => {
        this._cancelReattach(tabId);
        this.sessions.forget(tabId);
        await this.dbg.detach(tabId);
        if (!handedTo) {
          const left = this.groups.leave(tabId, origGroupId);
          if (takenBack) {
            await left;
            await this._giveBack(tabId, id, created);
          }
        }
      },
      closeTab: (tabId) => this._closeTab(tabId),
      tabGone: (tabId) => {
        this._cancelReattach(tabId);
        this.sessions.forget(tabId);
        this.dbg.forget(tabId);
        this.groups.forget(tabId);
      },
      instanceGone: (id) => {
        if (this.consent) this.consent.instanceGone(id);
      },
      relabeled: (id) => {
        const c = this.conns.get(id);
        const inst = this.locks && this.locks.instance(id);
        if (c && inst) c.label = inst.label;
        if (inst) this.groups.repaint(id, this.locks.tabsOf(id));
      },
      persist: (snapshot) => {
        const item = { [STATE_KEY]: snapshot };
        this._lastWrite = Promise.all([this.api.storage.session.set(item), this.api.storage.local.set(item)]).catch((e) =>
          this.log('-', null, `storing state failed: ${e.message}`),
        );
      },
    };
  }

  /** Attach the debugger to a tab for `instanceId` (its new holder). */
  async _attachFor(tabId, instanceId) {
    let tab;
    try {
      tab = await this.api.tabs.get(tabId);
    } catch {
      throw new TabmuxError(Codes.TAB_CLOSED, `tab ${tabId} is gone`, { tabId, reason: 'user' });
    }
    const url = tab.url || tab.pendingUrl || '';
    if (!isAttachableUrl(url)) throw notAttachable(tabId, url);
    const bad = this._tabForbidden(tab);
    if (bad) throw forbiddenPage(tabId, bad.url, bad.why);
    if (this.dbg.isAttached(tabId) && this.dbg.owner(tabId) !== instanceId) await this.dbg.detach(tabId);
    await this.dbg.attach(tabId, url, instanceId);
    const rec = this.locks.record(tabId);
    if (rec && !rec.targetId) {
      const targets = await this._targets();
      if (targets && targets.has(tabId)) this.locks.setTarget(tabId, targets.get(tabId));
    }
  }

  /** tabId → the browser's target id of that tab, or null when that cannot be told. */
  async _targets() {
    try {
      const all = await this.api.debugger.getTargets();
      return new Map(all.filter((t) => t.type === 'page' && t.tabId != null).map((t) => [t.tabId, t.id]));
    } catch {
      return null;
    }
  }

  _persistConsent() {
    if (!this.consent) return;
    const w = this.api.storage.session.set({ [CONSENT_KEY]: this.consent.snapshot() }).catch((e) => this.log('-', null, `storing consents failed: ${e.message}`));
    this._lastWrite = Promise.all([this._lastWrite, w]);
  }

  /** The open questions changed: the badge on the action icon, and a system notification per question. */
  _showAsks(asks) {
    const action = this.api.action;
    if (action) {
      const n = asks.length;
      action.setBadgeText({ text: n ? String(n) : '' }).catch(() => {});
      if (n) action.setBadgeBackgroundColor({ color: '#d93025' }).catch(() => {});
      action.setTitle({ title: n ? `tabmux: ${asks[0].label} wants to use a tab of yours — click to answer` : 'tabmux' }).catch(() => {});
    }
    const notes = this.api.notifications;
    if (!notes) return;
    const open = new Set(asks.map((a) => a.id));
    for (const id of [...this.notified]) {
      if (open.has(id)) continue;
      this.notified.delete(id);
      notes.clear(`${ASK_NOTIFICATION}${id}`).catch(() => {});
    }
    for (const a of asks) {
      if (this.notified.has(a.id)) continue;
      this.notified.add(a.id);
      notes
        .create(`${ASK_NOTIFICATION}${a.id}`, {
          type: 'basic',
          iconUrl: 'icons/icon-128.png',
          title: `${a.label} wants to use a tab of yours`,
          message: a.title || originOnly(a.url) || `tab ${a.tabId}`,
          contextMessage: originOnly(a.url),
          buttons: [{ title: 'Allow' }, { title: 'Deny' }],
          requireInteraction: true,
          priority: 2,
        })
        .catch((e) => this.log('-', null, `notification not shown (${e && e.message}); the popup asks`));
    }
  }

  /** A click on a notification's button: 0 is Allow, 1 is Deny. */
  onNotificationButton(notificationId, buttonIndex) {
    if (!this.consent || typeof notificationId !== 'string' || !notificationId.startsWith(ASK_NOTIFICATION)) return;
    const id = Number(notificationId.slice(ASK_NOTIFICATION.length));
    this.answer(id, buttonIndex === 0);
  }

  /** The user's answer (popup or notification). */
  answer(askId, allow) {
    if (!this.consent || !Number.isSafeInteger(askId)) return false;
    return this.consent.answer(askId, allow === true);
  }

  /**
   * The user takes a tab back (popup): its holder loses it (TAKEN_BACK), it leaves the
   * holder's group and window and stays open; every consent for it ends.
   */
  async takeBack(tabId) {
    await this.ready;
    if (!Number.isSafeInteger(tabId)) return false;
    const held = this.locks.takeBack(tabId);
    const revoked = this.consent.takeBack(tabId);
    if (held || revoked) this.log('-', null, `the user took tab ${tabId} back${held ? '' : ' (it was not held; its consents ended)'}`);
    return held || revoked;
  }

  /** A tab the user took back: out of its holder's own window, into one of the user's. */
  async _giveBack(tabId, instanceId, created) {
    let tab;
    try {
      tab = await this.api.tabs.get(tabId);
    } catch {
      return; // gone
    }
    const windowId = tab.windowId;
    let theirs = this.ownWindows.get(windowId) === instanceId;
    if (!theirs && created) {
      try {
        const others = (await this.api.tabs.query({ windowId })).filter((t) => t.windowId === windowId && t.id !== tabId);
        theirs = others.every((t) => {
          const r = this.locks.record(t.id);
          return r && r.created;
        });
      } catch {
        /* keep it where it is */
      }
    }
    if (!theirs) return;
    try {
      const target = await this._userWindow(windowId);
      if (target != null) await this.api.tabs.move(tabId, { windowId: target, index: -1 });
      else await this.api.windows.create({ tabId, focused: false });
    } catch (e) {
      this.log('-', null, `moving taken-back tab ${tabId} to a window of the user's failed: ${e.message}`);
    }
  }

  /** A normal window of the user's (not one tabmux opened for an instance), the last focused first. */
  async _userWindow(exceptId) {
    let all = [];
    try {
      all = (await this.api.windows.getAll({ windowTypes: ['normal'] })) || [];
    } catch {
      return null;
    }
    const ok = async (w) => {
      if (!w || w.id === exceptId || (w.type && w.type !== 'normal') || this.ownWindows.has(w.id)) return false;
      try {
        const tabs = (await this.api.tabs.query({ windowId: w.id })).filter((t) => t.windowId === w.id);
        return !tabs.length || tabs.some((t) => !this.locks.record(t.id) || !this.locks.record(t.id).created);
      } catch {
        return false;
      }
    };
    try {
      const f = await this.api.windows.getLastFocused({ windowTypes: ['normal'] });
      if (await ok(f)) return f.id;
    } catch {
      /* none focused */
    }
    for (const w of all) if (await ok(w)) return w.id;
    return null;
  }

  _joinGroup(tabId, instanceId) {
    this.groups.join(tabId, instanceId).then((before) => {
      if (before != null) this.locks.setOrigGroup(tabId, before);
    });
  }

  /** Remove a tab; resolves true once it is gone (chrome.tabs.remove done and the tab no longer exists). */
  async _closeTab(tabId) {
    this._cancelReattach(tabId);
    try {
      await this.api.tabs.remove(tabId);
    } catch (e) {
      this.log('-', null, `removing tab ${tabId}: ${e.message}`);
    }
    try {
      await this.api.tabs.get(tabId);
    } catch {
      return true; // gone
    }
    // Still there (e.g. a beforeunload dialog): wait a little for onRemoved.
    return new Promise((resolve) => {
      let set = this.removedWaiters.get(tabId);
      if (!set) this.removedWaiters.set(tabId, (set = new Set()));
      const done = (gone) => {
        this.clock.clearTimeout(timer);
        set.delete(done);
        if (!set.size) this.removedWaiters.delete(tabId);
        resolve(gone);
      };
      const timer = this.clock.setTimeout(() => done(false), CLOSE_WAIT_MS);
      set.add(done);
    });
  }

  // --------------------------------------------------------- browser events

  async onTabRemoved(tabId) {
    await this.ready;
    const set = this.removedWaiters.get(tabId);
    if (set) for (const done of [...set]) done(true);
    this.dbg.forget(tabId);
    this.sessions.forget(tabId);
    this.confined.delete(tabId);
    this.locks.tabRemoved(tabId);
    this.consent.tabRemoved(tabId);
  }

  /**
   * A tab opened by a tab an instance holds (a popup, a link to a new tab) is that
   * instance's too: held from birth, attached, in its group, and announced.
   */
  async onTabCreated(tab) {
    await this.ready;
    const opener = tab && tab.openerTabId;
    if (opener == null || tab.id == null || this.locks.record(tab.id)) return;
    const rec = this.locks.record(opener);
    if (!rec || rec.closing) return;
    const id = rec.holder;
    const conn = this.conns.get(id);
    if (!this._isCurrent(conn)) return;
    this.locks.created(id, tab.id);
    this.consent.markAgent(tab.id);
    this.locks.setOrigGroup(tab.id, NO_GROUP);
    try {
      await this.locks.serial(tab.id, () => this._attachFor(tab.id, id));
    } catch (e) {
      // A page the browser won't let extensions debug: leave it to the user.
      this.log(conn.label, null, `tab ${tab.id} opened by tab ${opener} not adopted: ${e.message}`);
      this.locks.release(id, tab.id);
      return;
    }
    this.groups.join(tab.id, id);
    conn.emit('tab.opened', { tabId: tab.id, openerTabId: opener, url: tab.pendingUrl || tab.url || '' });
    // The browser may have brought the new tab to the front: give the user's back.
    const now = this.clock.now();
    for (const [k, at] of this.opened) if (now - at > 10_000) this.opened.delete(k);
    this.opened.set(tab.id, now);
    try {
      const t = await this.api.tabs.get(tab.id);
      if (t.active) await this._restoreFront(t.windowId, tab.id);
    } catch {
      /* gone already */
    }
  }

  async _restoreFront(windowId, tabId) {
    const fronts = (this.userFront.get(windowId) || []).filter((id) => id !== tabId);
    const front = fronts[fronts.length - 1];
    if (front != null) await this.api.tabs.update(front, { active: true }).catch(() => {});
  }

  /** Remembers the user's tabs in front of each window (the last two, tabs nobody holds). */
  onTabActivated(tabId, windowId) {
    if (!this.locks) return;
    const at = this.opened.get(tabId);
    if (this.locks.record(tabId)) {
      // A tab a page just opened came to the front by itself: the user's goes back.
      if (at != null && this.clock.now() - at < 3000) {
        this.opened.delete(tabId);
        this._restoreFront(windowId, tabId);
      }
      return;
    }
    const list = (this.userFront.get(windowId) || []).filter((id) => id !== tabId);
    list.push(tabId);
    this.userFront.set(windowId, list.slice(-2));
    if (this.userFront.size > 64) this.userFront.delete(this.userFront.keys().next().value);
  }

  async onDebuggerEvent(source, method, params) {
    if (!this.locks) await this.ready;
    const tabId = source && source.tabId;
    if (tabId == null) return;
    const rec = this.locks.record(tabId);
    if (!rec || rec.closing) return;
    // Only the holder for whom this attachment was made gets its events.
    if (this.dbg.owner(tabId) !== rec.holder) return;
    const conn = this.conns.get(rec.holder);
    if (!conn || !conn.isOpen()) return;
    if (method.startsWith('Target.')) this.sessions.onEvent(tabId, method, params);
    const ev = { tabId, method, params: params || {} };
    if (source.sessionId) ev.sessionId = source.sessionId;
    if (!conn.emit('cdp.event', ev)) this.log(conn.label, null, `cdp.event ${method} of tab ${tabId} not sent (too large or closed)`);
  }

  async onDebuggerDetach(source, reason) {
    await this.ready;
    const tabId = source && source.tabId;
    if (tabId == null) return;
    this.dbg.detached(tabId);
    const rec = this.locks.record(tabId);
    if (!rec || rec.closing) return;
    // Detached because the tab went to a page no client may control: it stays detached.
    try {
      const bad = this._tabForbidden(await this.api.tabs.get(tabId));
      if (bad) {
        await this.onTabUrl(tabId, bad.url);
        return;
      }
    } catch {
      /* gone: onRemoved follows */
    }
    this.log(this.locks.holderOf(tabId).name, null, `debugger detached from tab ${tabId} (${reason}); re-attaching`);
    this._scheduleReattach(tabId, 0);
  }

  _scheduleReattach(tabId, attempt) {
    this._cancelReattach(tabId);
    if (attempt >= REATTACH_DELAYS_MS.length) {
      this.log('-', null, `tab ${tabId}: giving up re-attaching; the holder's next command tries again`);
      return;
    }
    const timer = this.clock.setTimeout(() => {
      this.reattach.delete(tabId);
      this.locks.serial(tabId, async () => {
        const rec = this.locks.record(tabId);
        if (!rec || rec.closing || this.dbg.isAttached(tabId)) return;
        try {
          await this._attachFor(tabId, rec.holder);
        } catch (e) {
          if (e && e.code === Codes.TAB_CLOSED) return;
          this._scheduleReattach(tabId, attempt + 1);
          return;
        }
        const conn = this.conns.get(rec.holder);
        if (conn && conn.isOpen()) conn.emit('tab.attached', { tabId });
      });
    }, REATTACH_DELAYS_MS[attempt]);
    this.reattach.set(tabId, timer);
  }

  _cancelReattach(tabId) {
    const t = this.reattach.get(tabId);
    if (t) {
      this.clock.clearTimeout(t);
      this.reattach.delete(tabId);
    }
  }

  // ----------------------------------------------------------------- requests

  /** Whether `tabId` is an agent tab (made by a client; every other tab is the user's). */
  _isAgentTab(tabId) {
    const rec = this.locks.record(tabId);
    return this.consent.isAgent(tabId) || !!(rec && rec.created);
  }

  /** What a claim of `tabId` by `instanceId` needs: 'ok', 'ask' or 'deny' (see lib/consent.js). */
  _decide(instanceId, tabId) {
    const inst = this.locks.instance(instanceId);
    const rec = this.locks.record(tabId);
    if (rec && rec.holder === instanceId && !rec.closing) return 'ok';
    return this.consent.decide(instanceId, tabId, inst && inst.userTabs, { agent: this._isAgentTab(tabId) });
  }

  async _tabEntry(tab, instanceId) {
    const rec = this.locks.record(tab.id);
    const holder = rec ? this.locks.holderOf(tab.id) : null;
    const url = tab.url || tab.pendingUrl || '';
    const user = !this._isAgentTab(tab.id);
    // A user tab the caller may not use without asking shows its origin only.
    const open = this._decide(instanceId, tab.id) === 'ok';
    return {
      tabId: tab.id,
      windowId: tab.windowId,
      title: tab.title || '',
      url: open ? url : originOnly(url),
      active: !!tab.active,
      holder,
      mine: !!holder && holder.instanceId === instanceId && !rec.closing,
      created: !!(rec && rec.created),
      user,
      consent: open,
      waiting: rec ? rec.queue.length : 0,
      waiters: this.locks.waitersOf(tab.id, this.clock.now()),
      attachable: isAttachableUrl(url),
    };
  }

  async tabsList(conn, p) {
    const id = conn.instanceId;
    const all = p.all === true;
    const tabs = await this.api.tabs.query({});
    if (all) return { tabs: await Promise.all(tabs.map((t) => this._tabEntry(t, id))) };
    const byId = new Map(tabs.map((t) => [t.id, t]));
    const mine = this.locks.tabsOf(id).filter((t) => byId.has(t));
    return { tabs: await Promise.all(mine.map((t) => this._tabEntry(byId.get(t), id))) };
  }

  /** The window tabmux opened for an instance's tabs, if it still has one. */
  async _instanceWindow(instanceId) {
    for (const [windowId, owner] of this.ownWindows) {
      if (owner !== instanceId) continue;
      try {
        const w = await this.api.windows.get(windowId);
        if (w && (!w.type || w.type === 'normal')) return windowId;
      } catch {
        /* closed */
      }
      this.ownWindows.delete(windowId);
    }
    // After a worker restart: a window holding only this instance's tabs is its own.
    for (const tabId of this.locks.tabsOf(instanceId)) {
      try {
        const t = await this.api.tabs.get(tabId);
        if (await this._isInstanceWindow(t.windowId, instanceId)) return t.windowId;
      } catch {
        /* gone */
      }
    }
    return null;
  }

  /** Whether a window is an instance's own (every tab in it held by the instance). */
  async _isInstanceWindow(windowId, instanceId) {
    if (this.ownWindows.get(windowId) === instanceId) return true;
    let tabs;
    try {
      tabs = (await this.api.tabs.query({ windowId })).filter((t) => t.windowId === windowId);
    } catch {
      return false;
    }
    const own = tabs.length > 0 && tabs.every((t) => {
      const r = this.locks.record(t.id);
      return r && r.holder === instanceId && r.created;
    });
    if (own) this.ownWindows.set(windowId, instanceId);
    return own;
  }

  async _targetWindow() {
    try {
      const w = await this.api.windows.getLastFocused({ windowTypes: ['normal'] });
      if (w && (!w.type || w.type === 'normal')) return w.id;
    } catch {
      /* none focused */
    }
    try {
      const all = await this.api.windows.getAll({ windowTypes: ['normal'] });
      if (all && all.length) return all[0].id;
    } catch {
      /* none */
    }
    return null;
  }

  async tabsCreate(conn, p) {
    const id = conn.instanceId;
    const url = p.url === undefined ? 'about:blank' : p.url;
    if (typeof url !== 'string' || url.length > 8192) throw bad('url must be a string');
    if (!isAttachableUrl(url)) throw notAttachable('(new)', url);
    const why = forbiddenReason(url, this._policy());
    if (why) throw forbiddenUrl(url, why);
    // Each instance works in a window of its own, opened unfocused: its tab in front
    // there is rendered (a tab hidden behind another gets no frames, so mouse input
    // and screenshots stall), and the user's windows and tabs stay as they are.
    const windowId = await this._instanceWindow(id);
    let tab;
    if (windowId == null) {
      const w = await this.api.windows.create({ url, focused: false, type: 'normal' });
      tab = w.tabs && w.tabs[0];
      if (!tab) throw new TabmuxError(Codes.INTERNAL, 'tabs.create: the new window has no tab');
      this.ownWindows.set(w.id, id);
    } else {
      tab = await this.api.tabs.create({ windowId, url, active: true });
    }
    const tabId = tab.id;
    if (!this._isCurrent(conn)) {
      // It left while the tab was being made: nobody would own it.
      this.api.tabs.remove(tabId).catch(() => {});
      throw new TabmuxError(Codes.INTERNAL, 'connection closed during tabs.create');
    }
    this.locks.created(id, tabId);
    this.consent.markAgent(tabId);
    this.locks.setOrigGroup(tabId, NO_GROUP);
    try {
      await this.locks.serial(tabId, () => this._attachFor(tabId, id));
    } catch (e) {
      await this.locks.close(id, tabId).catch(() => {});
      throw e;
    }
    this.groups.join(tabId, id);
    return { tabId };
  }

  async tabsClaim(conn, p) {
    const id = conn.instanceId;
    const tabId = intParam(p, 'tabId');
    const timeoutMs = p.timeoutMs === undefined ? 30_000 : p.timeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw bad('timeoutMs must be a non-negative number');
    let tab;
    try {
      tab = await this.api.tabs.get(tabId);
    } catch {
      throw new TabmuxError(Codes.NOT_FOUND, `there is no tab ${tabId}`, { tabId });
    }
    const url = tab.url || tab.pendingUrl || '';
    if (!isAttachableUrl(url)) throw notAttachable(tabId, url);
    const bad = this._tabForbidden(tab);
    if (bad) throw forbiddenPage(tabId, bad.url, bad.why);
    const need = this._decide(id, tabId);
    if (need === 'deny') {
      throw new TabmuxError(Codes.CONSENT_DENIED, `tab ${tabId} is the user's, and this tabmux runs with --user-tabs deny: it never uses the user's tabs. Open your own tab with browser_navigate or browser_tabs new`, { tabId, policy: 'deny' });
    }
    if (need === 'ask') {
      // The claim waits for the user's answer within its own timeout, then for the lock with the time left.
      const started = this.clock.now();
      await this.consent.ask({ instanceId: id, conn, tabId, label: conn.label, title: tab.title || '', url, timeoutMs });
      if (!this._isCurrent(conn)) throw new TabmuxError(Codes.INTERNAL, 'connection closed while the user was asked');
      return this.locks.claim(id, conn, tabId, Math.max(0, timeoutMs - (this.clock.now() - started)));
    }
    return this.locks.claim(id, conn, tabId, timeoutMs);
  }

  async tabsRelease(conn, p) {
    this.locks.release(conn.instanceId, intParam(p, 'tabId'));
    return {};
  }

  async tabsClose(conn, p) {
    await this.locks.close(conn.instanceId, intParam(p, 'tabId'));
    return {};
  }

  async tabsActivate(conn, p) {
    const tabId = intParam(p, 'tabId');
    this.locks.check(conn.instanceId, tabId);
    await this.api.tabs.update(tabId, { active: true });
    return {};
  }

  /**
   * Sends one CDP command. A browser does not render a tab hidden behind another, so
   * mouse input to it stalls and a screenshot waits for a frame that never comes. A
   * tab in its holder's own window is brought to the front of that window and stays
   * there; a tab in one of the user's windows (a borrowed tab) is shown for the moment
   * of the command, then the user's tab comes back. Those are done one at a time.
   */
  async _send(target, method, params) {
    if (!NEEDS_FRAMES.has(method) || target.sessionId) {
      return this.api.debugger.sendCommand(target, method, params);
    }
    let tab;
    try {
      tab = await this.api.tabs.get(target.tabId);
    } catch {
      return this.api.debugger.sendCommand(target, method, params);
    }
    if (tab.active) return this.api.debugger.sendCommand(target, method, params);
    const rec = this.locks.record(tab.id);
    if (rec && (await this._isInstanceWindow(tab.windowId, rec.holder))) {
      await this.api.tabs.update(tab.id, { active: true });
      return this.api.debugger.sendCommand(target, method, params);
    }
    const run = async () => {
      const front = (await this.api.tabs.query({ active: true, windowId: tab.windowId }))
        .find((t) => t.active && t.windowId === tab.windowId && t.id !== tab.id);
      await this.api.tabs.update(tab.id, { active: true });
      try {
        return await this.api.debugger.sendCommand(target, method, params);
      } finally {
        if (front) await this.api.tabs.update(front.id, { active: true }).catch(() => {});
      }
    };
    const turn = (this._captures || Promise.resolve()).then(run, run);
    this._captures = turn.catch(() => {});
    return turn;
  }

  async cdp(conn, p) {
    const id = conn.instanceId;
    const tabId = intParam(p, 'tabId');
    if (typeof p.method !== 'string' || !p.method) throw bad('method must be a CDP method name');
    if (p.params !== undefined && (p.params === null || typeof p.params !== 'object' || Array.isArray(p.params))) throw bad('params must be an object');
    if (p.sessionId !== undefined && typeof p.sessionId !== 'string') throw bad('sessionId must be a string');
    checkCommand(p.method, p.params, this._policy());
    const done = this.locks.use(id, tabId);
    const cap = this.clock.setTimeout(done, MAX_COMMAND_MS);
    try {
      await this._checkPage(tabId, p);
      if (!this.dbg.isAttached(tabId) || this.dbg.owner(tabId) !== id) {
        await this.locks.serial(tabId, () => {
          this.locks.check(id, tabId);
          return this._attachFor(tabId, id);
        });
        this.locks.check(id, tabId);
        conn.emit('tab.attached', { tabId });
      }
      const target = p.sessionId ? { tabId, sessionId: p.sessionId } : { tabId };
      await this._checkHistory(tabId, p);
      try {
        return trimResult(p.method, (await this._send(target, p.method, p.params || {})) || {});
      } catch (e) {
        if (!isNotAttachedError(e)) throw classifyCommandError(e, tabId, p.method);
      }
      // Detached under us (the tab navigated somewhere, DevTools took over): once more,
      // if the tab is still the caller's (the user may have just taken it back).
      this.dbg.detached(tabId);
      await this.locks.serial(tabId, () => {
        this.locks.check(id, tabId);
        return this._attachFor(tabId, id);
      });
      this.locks.check(id, tabId);
      conn.emit('tab.attached', { tabId });
      try {
        return trimResult(p.method, (await this._send(target, p.method, p.params || {})) || {});
      } catch (e) {
        throw classifyCommandError(e, tabId, p.method);
      }
    } finally {
      this.clock.clearTimeout(cap);
      done();
    }
  }

  /**
   * Before every command: the tab (and the child session addressed) shows a page a
   * client may control, and a history step goes to one. Throws FORBIDDEN_PAGE /
   * FORBIDDEN_URL; a tab found on a forbidden page is detached first.
   */
  async _checkPage(tabId, p) {
    let tab;
    try {
      tab = await this.api.tabs.get(tabId);
    } catch {
      throw new TabmuxError(Codes.TAB_CLOSED, `tab ${tabId} is gone`, { tabId, reason: 'user' });
    }
    const bad = this._tabForbidden(tab);
    if (bad) {
      await this.onTabUrl(tabId, bad.url);
      throw forbiddenPage(tabId, bad.url, bad.why);
    }
    this.confined.delete(tabId);
    if (p.sessionId) {
      const url = this.sessions.url(tabId, p.sessionId);
      const why = url && forbiddenReason(url, this._policy());
      if (why) throw forbiddenPage(tabId, url, `${why}; in a frame of the tab`);
    }
  }

  /** A step in the tab's history goes to a page a client may control. */
  async _checkHistory(tabId, p) {
    if (p.method === 'Page.navigateToHistoryEntry' && !p.sessionId) {
      let h;
      try {
        h = await this.api.debugger.sendCommand({ tabId }, 'Page.getNavigationHistory', {});
      } catch (e) {
        throw classifyCommandError(e, tabId, 'Page.getNavigationHistory');
      }
      const entry = ((h && h.entries) || []).find((e) => e.id === (p.params && p.params.entryId));
      const why = entry && forbiddenReason(entry.url, this._policy());
      if (why) throw forbiddenUrl(entry.url, why);
    }
  }

  // ------------------------------------------------------------------- popup

  async status() {
    await this.ready;
    const s = this.locks.status();
    let tabs = [];
    try {
      tabs = await this.api.tabs.query({});
    } catch {
      /* ignore */
    }
    const byId = new Map(tabs.map((t) => [t.id, t]));
    const tabView = (t) => {
      const tab = byId.get(t.tabId);
      return { ...t, title: tab ? tab.title : '', url: tab ? tab.url || tab.pendingUrl || '' : '' };
    };
    return {
      range: this.range,
      version: this.version,
      allowFile: this.allowFile,
      pairing: this.secretFrom,
      instances: s.instances.map((i) => {
        const c = this.conns.get(i.instanceId);
        return { ...i, connected: !!(c && c.isOpen()), lastActivityMs: c ? Math.min(i.lastActivityMs, this.clock.now() - c.lastActivity) : i.lastActivityMs };
      }),
      tabs: s.tabs.map(tabView),
      // The tab's title now (it may have finished loading since the question was asked).
      asks: this.consent.pending().map((a) => {
        const tab = byId.get(a.tabId);
        return tab ? { ...a, title: tab.title || a.title, url: tab.url || tab.pendingUrl || a.url } : a;
      }),
      allowed: [...this.consent.grants].map(([tabId, ids]) => ({
        ...tabView({ tabId }),
        held: !!this.locks.record(tabId),
        labels: [...ids].map((i) => (this.locks.instance(i) ? this.locks.instance(i).label : i)),
      })),
      ports: this.discovery ? this.discovery.view() : [],
      connecting: [...this.attempts].map((c) => c.port),
      errors: this.errors.slice().reverse(),
    };
  }
}
