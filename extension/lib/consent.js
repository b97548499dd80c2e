// User tabs and the user's consent. See docs/PROTOCOL.md, "User tabs and consent".
//
// A tab a tabmux client created (tabs.create, or a tab opened by the page of a tab
// it held) is an *agent tab*. Every other tab — opened by the user, or open before the
// extension started — is a *user tab*. A client claims a user tab only with the
// user's consent for that client (its instance id), unless its policy
// (`userTabs` in its hello: "ask" | "allow" | "deny") says otherwise.
//
// Consent is per (tab, instance id) and lasts until the tab is closed, the user takes
// the tab back, or the instance is gone for good (a new tabmux process has a new id
// and asks again). Releasing and claiming again does not ask again.
//
// Pure: no chrome.* and no global clock. Time through `clock`, side effects through
// `hooks`:
//
//   clock = { now(), setTimeout(fn, ms), clearTimeout(handle) }
//   hooks = {
//     asked(asks)     → the list of open questions changed (badge, notifications)
//     persist()       → the agent marks or the grants changed (store them)
//   }

import { Codes, TabmuxError } from './errors.js';

export const POLICIES = Object.freeze(['ask', 'allow', 'deny']);
export const DEFAULT_POLICY = 'ask';
/** Open questions one instance may have at once (every queue has a bound). */
export const MAX_ASKS_PER_INSTANCE = 8;
/** Agent tabs remembered at most (oldest forgotten first; a forgotten one counts as the user's). */
export const MAX_AGENT_TABS = 4096;
export const CONSENT_VERSION = 1;

const noop = () => {};

/** The policy a hello carries; anything else is the safe default. */
export function normalizePolicy(v) {
  return POLICIES.includes(v) ? v : DEFAULT_POLICY;
}

function secs(ms) {
  return `${Math.round(ms / 1000)} s`;
}

/** "https://bank.example" for "https://bank.example/account?id=7"; scheme only for others. */
export function originOnly(url) {
  if (typeof url !== 'string' || !url) return '';
  try {
    const u = new URL(url);
    if (u.origin && u.origin !== 'null') return `${u.origin}/…`;
    return `${u.protocol}…`;
  } catch {
    return '…';
  }
}

export class Consent {
  constructor({ clock, hooks = {}, log = noop } = {}) {
    if (!clock) throw new Error('Consent needs a clock');
    this.clock = clock;
    this.hooks = { asked: noop, persist: noop, ...hooks };
    this.log = log;
    /** tabIds of agent tabs, oldest first. */
    this.agent = new Set();
    /** tabId → Set of instance ids the user allowed. */
    this.grants = new Map();
    /** askId → open question. */
    this.asks = new Map();
    this.nextAsk = 1;
  }

  // ------------------------------------------------------------- agent tabs

  markAgent(tabId) {
    this.agent.delete(tabId);
    this.agent.add(tabId);
    while (this.agent.size > MAX_AGENT_TABS) this.agent.delete(this.agent.values().next().value);
    this.hooks.persist();
  }

  isAgent(tabId) {
    return this.agent.has(tabId);
  }

  // ----------------------------------------------------------------- grants

  granted(tabId, instanceId) {
    const g = this.grants.get(tabId);
    return !!g && g.has(instanceId);
  }

  grant(tabId, instanceId) {
    let g = this.grants.get(tabId);
    if (!g) this.grants.set(tabId, (g = new Set()));
    g.add(instanceId);
    this.hooks.persist();
  }

  /**
   * What a claim of `tabId` by `instanceId` under `policy` needs:
   * 'ok' (an agent tab, policy allow, or consent given), 'ask', or 'deny'.
   * `agent` says the tab is an agent tab by another sign (a held created tab).
   */
  decide(instanceId, tabId, policy, { agent = false } = {}) {
    if (agent || this.agent.has(tabId)) return 'ok';
    const p = normalizePolicy(policy);
    if (p === 'allow' || this.granted(tabId, instanceId)) return 'ok';
    return p === 'deny' ? 'deny' : 'ask';
  }

  /** Whether `instanceId` may see the full URL of `tabId` (the same rule, without asking). */
  mayRead(instanceId, tabId, policy, opts) {
    return this.decide(instanceId, tabId, policy, opts) === 'ok';
  }

  // ------------------------------------------------------------------ asking

  /**
   * Ask the user whether `instanceId` (shown as `label`) may use `tabId`.
   * Resolves once allowed (the grant is recorded); rejects with CONSENT_DENIED,
   * CONSENT_TIMEOUT after `timeoutMs`, TAB_CLOSED, or INTERNAL when the asker's
   * connection is gone. `conn` is where the claim came from.
   */
  ask({ instanceId, conn, tabId, label, title, url, timeoutMs }) {
    const now = this.clock.now();
    const timeout = Math.max(0, Number.isFinite(timeoutMs) ? timeoutMs : 30_000);
    if (timeout === 0) {
      return Promise.reject(new TabmuxError(Codes.CONSENT_TIMEOUT, `tab ${tabId} is the user's: a claim with timeout 0 cannot wait for the user's answer; claim it with a timeout (e.g. 60 s) and the user is asked in the browser`, { tabId, waitedMs: 0 }));
    }
    // The same instance asking again for the same tab (e.g. after a reconnect) takes over the open question.
    let old = null;
    for (const a of this.asks.values()) if (a.instanceId === instanceId && a.tabId === tabId) old = a;
    if (!old) {
      const mine = [...this.asks.values()].filter((a) => a.instanceId === instanceId).length;
      if (mine >= MAX_ASKS_PER_INSTANCE) {
        return Promise.reject(new TabmuxError(Codes.BAD_REQUEST, `you already wait for the user's answer about ${mine} tabs; wait for those first`, { tabId }));
      }
    }
    return new Promise((resolve, reject) => {
      let a;
      if (old) {
        this._clear(old);
        this._settle(old, 'reject', new TabmuxError(Codes.BAD_REQUEST, `superseded by a newer claim of tab ${tabId}`));
        a = old;
      } else {
        a = { id: this.nextAsk++, instanceId, tabId, since: now };
        this.asks.set(a.id, a);
      }
      Object.assign(a, { conn, label: label || instanceId, title: title || '', url: url || '', deadline: now + timeout, resolve, reject });
      a.timer = this.clock.setTimeout(() => this._timedOut(a), timeout);
      this.log(a.label, `asks the user for tab ${tabId} (${secs(timeout)} to answer)`);
      this._asked();
    });
  }

  /** The user's answer from the popup or a notification. Returns whether a question was open. */
  answer(askId, allow) {
    const a = this.asks.get(askId);
    if (!a) return false;
    this._end(a);
    if (allow) {
      this.grant(a.tabId, a.instanceId);
      this.log(a.label, `the user allowed tab ${a.tabId}`);
      this._settle(a, 'resolve', { tabId: a.tabId });
    } else {
      this.log(a.label, `the user denied tab ${a.tabId}`);
      this._settle(a, 'reject', new TabmuxError(Codes.CONSENT_DENIED, `the user said no: tab ${a.tabId} is the user's and you may not use it; open your own tab with browser_navigate or browser_tabs new instead`, { tabId: a.tabId }));
    }
    return true;
  }

  /** Open questions, oldest first, for the popup. */
  pending() {
    const now = this.clock.now();
    return [...this.asks.values()].map((a) => ({
      id: a.id,
      instanceId: a.instanceId,
      label: a.label,
      tabId: a.tabId,
      title: a.title,
      url: a.url,
      waitedMs: now - a.since,
      timeoutInMs: Math.max(0, a.deadline - now),
    }));
  }

  // ------------------------------------------------------------------ events

  /** A connection closed: its questions can no longer be answered to anyone. */
  connectionClosed(instanceId, conn) {
    for (const a of [...this.asks.values()]) {
      if (a.instanceId === instanceId && (conn === undefined || a.conn === conn)) {
        this._end(a);
        this._settle(a, 'reject', new TabmuxError(Codes.INTERNAL, 'connection closed'));
      }
    }
  }

  /** An instance is gone for good: its grants go with it. */
  instanceGone(instanceId) {
    this.connectionClosed(instanceId);
    let changed = false;
    for (const [tabId, g] of this.grants) {
      if (g.delete(instanceId)) changed = true;
      if (!g.size) this.grants.delete(tabId);
    }
    if (changed) this.hooks.persist();
  }

  /** The tab is gone: its marks and grants too; its open questions fail at once. */
  tabRemoved(tabId) {
    for (const a of [...this.asks.values()]) {
      if (a.tabId !== tabId) continue;
      this._end(a);
      this._settle(a, 'reject', new TabmuxError(Codes.TAB_CLOSED, `tab ${tabId} was closed while the user was asked`, { tabId, reason: 'user' }));
    }
    const had = this.agent.delete(tabId) | this.grants.delete(tabId);
    if (had) this.hooks.persist();
  }

  /** The user took the tab back: it is the user's now, and every consent for it ends. */
  takeBack(tabId) {
    const had = this.agent.delete(tabId) | this.grants.delete(tabId);
    if (had) this.hooks.persist();
    return !!had;
  }

  // ------------------------------------------------------------- persistence

  snapshot() {
    return {
      v: CONSENT_VERSION,
      agent: [...this.agent],
      grants: [...this.grants].map(([tabId, g]) => [tabId, [...g]]),
    };
  }

  /** Agent marks and grants from a snapshot. Open questions are never kept: nobody could hear their answer. */
  static restore(snapshot, opts) {
    const c = new Consent(opts);
    if (!snapshot || snapshot.v !== CONSENT_VERSION) return c;
    for (const t of Array.isArray(snapshot.agent) ? snapshot.agent : []) if (Number.isSafeInteger(t)) c.agent.add(t);
    for (const e of Array.isArray(snapshot.grants) ? snapshot.grants : []) {
      if (!Array.isArray(e) || !Number.isSafeInteger(e[0]) || !Array.isArray(e[1])) continue;
      const ids = e[1].filter((x) => typeof x === 'string');
      if (ids.length) c.grants.set(e[0], new Set(ids));
    }
    return c;
  }

  /** Keep only what concerns tabs that exist (after a restart). */
  retainTabs(alive) {
    let changed = false;
    for (const t of [...this.agent]) if (!alive.has(t)) changed = this.agent.delete(t) || changed;
    for (const t of [...this.grants.keys()]) if (!alive.has(t)) changed = this.grants.delete(t) || changed;
    if (changed) this.hooks.persist();
  }

  dispose() {
    for (const a of this.asks.values()) this._clear(a);
    this.asks.clear();
  }

  // --------------------------------------------------------------- internals

  _timedOut(a) {
    if (this.asks.get(a.id) !== a) return;
    a.timer = null;
    this._end(a);
    const waited = this.clock.now() - a.since;
    this.log(a.label, `nobody answered about tab ${a.tabId} within ${secs(waited)}`);
    this._settle(a, 'reject', new TabmuxError(Codes.CONSENT_TIMEOUT, `tab ${a.tabId} is the user's and nobody answered in the browser within ${secs(waited)}; ask the user to click Allow in the tabmux popup and claim again with a longer timeout, or use your own tab`, { tabId: a.tabId, waitedMs: waited }));
  }

  _clear(a) {
    if (a.timer) this.clock.clearTimeout(a.timer);
    a.timer = null;
  }

  _end(a) {
    this._clear(a);
    this.asks.delete(a.id);
    this._asked();
  }

  _settle(a, how, value) {
    const fn = a[how];
    a.resolve = a.reject = null;
    if (fn) fn(value);
  }

  _asked() {
    try {
      this.hooks.asked(this.pending());
    } catch (e) {
      this.log('-', `asked hook: ${e.message}`);
    }
  }
}
