// The lock manager: which instance holds which tab, the FIFO wait queues, the
// leases, the grace period after a disconnect, and the order in which a leaving
// instance's tabs are closed and released. See docs/PROTOCOL.md, "Tabs,
// ownership and locks".
//
// Pure: no chrome.* and no global clock. Everything with a side effect comes in
// through `hooks`, time through `clock`:
//
//   clock = { now(), setTimeout(fn, ms), clearTimeout(handle) }
//   hooks = {
//     isOpen(conn)                         → bool: is this connection still the open socket?
//     emit(instanceId, conn, event, params) → send an event (only called with an open conn)
//     prepareGrant(tabId, instanceId, {created}) → Promise: attach the debugger, group the tab;
//                                            a claim is answered only after it resolves
//     released(tabId, instanceId, {handedTo, origGroupId, takenBack, created}) → Promise: detach, ungroup
//                                            (takenBack: the user took it back; give it a window of theirs)
//     closeTab(tabId)                      → Promise<bool>: remove the tab; true once it is gone
//     tabGone(tabId)                       → the tab's record was dropped (it no longer exists)
//     relabeled(instanceId)                → an instance's label or colour changed
//     instanceGone(instanceId)             → an instance's grace ended: it is gone for good
//     persist(snapshot, {urgent})          → store the state (chrome.storage.session)
//   }
//
// Invariant: a tab has a record iff it is held (possibly while closing). A free
// tab has no record, so nothing is left behind once every instance has gone.

import { Codes, TabmuxError } from './errors.js';
import { PROTOCOL } from './protocol.js';
import { uniqueLabel, pickColor, cleanName } from './naming.js';
import { normalizePolicy } from './consent.js';

export const DEFAULT_LEASE_MS = PROTOCOL.defaults.leaseMs;
export const DEFAULT_GRACE_MS = PROTOCOL.defaults.graceMs;
export const MAX_CLAIM_TIMEOUT_MS = 10 * 60_000;
/** How many lost / closed tab ids are remembered per instance. */
export const MAX_REMEMBERED = 256;
/** Lease renewals alone are persisted at most this often. */
export const LAZY_PERSIST_MS = 1_000;
export const SNAPSHOT_VERSION = 1;

const noop = () => {};

function err(code, message, data) {
  return new TabmuxError(code, message, data);
}

function secs(ms) {
  return `${Math.round(ms / 1000)} s`;
}

function remember(map, key, value) {
  map.delete(key);
  map.set(key, value);
  while (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value);
}

export class LockManager {
  constructor({ clock, hooks = {}, log = noop } = {}) {
    if (!clock) throw new Error('LockManager needs a clock');
    this.clock = clock;
    this.hooks = {
      isOpen: () => false,
      emit: noop,
      prepareGrant: async () => {},
      released: async () => {},
      closeTab: async () => true,
      tabGone: noop,
      relabeled: noop,
      instanceGone: noop,
      persist: noop,
      ...hooks,
    };
    this.log = log;
    /** instanceId → instance state; each instance has its own object, nothing shared. */
    this.instances = new Map();
    /** tabId → lock record (held tabs only). */
    this.tabs = new Map();
    this.seq = 0;
    this._timer = null;
    this._timerAt = Infinity;
    this._lazyTimer = null;
    /** tabId → number of commands in flight (a busy holder is not idle). */
    this._inflight = new Map();
    /** tabId → tail of the chain of side effects on that tab. */
    this._chains = new Map();
    this._disposed = false;
  }

  // ---------------------------------------------------------------- instances

  /**
   * An instance finished its hello on `conn`. Returns {resumed, tabs}: resumed
   * when the same instanceId was known (within its grace period, or across a
   * worker restart), with the tabs it holds.
   */
  connect(instanceId, conn, { name, leaseMs, graceMs, port, userTabs } = {}) {
    const now = this.clock.now();
    let inst = this.instances.get(instanceId);
    const resumed = !!inst;
    if (!inst) {
      inst = {
        instanceId,
        name: cleanName(name),
        label: '',
        color: '',
        leaseMs: DEFAULT_LEASE_MS,
        graceMs: DEFAULT_GRACE_MS,
        port: null,
        userTabs: normalizePolicy(userTabs),
        status: 'connected',
        conn: null,
        graceDeadline: null,
        connectedAt: now,
        lastActivity: now,
        lost: new Map(),
        closed: new Map(),
      };
      this.instances.set(instanceId, inst);
      inst.label = uniqueLabel(inst.name, this._others(inst, 'label'));
      inst.color = pickColor(this._others(inst, 'color'));
    } else if (name !== undefined && cleanName(name) !== inst.name) {
      inst.name = cleanName(name);
      inst.label = uniqueLabel(inst.name, this._others(inst, 'label'));
    }
    if (Number.isFinite(leaseMs) && leaseMs > 0) inst.leaseMs = leaseMs;
    if (Number.isFinite(graceMs) && graceMs >= 0) inst.graceMs = graceMs;
    if (port != null) inst.port = port;
    inst.userTabs = normalizePolicy(userTabs);
    inst.conn = conn;
    inst.status = 'connected';
    inst.graceDeadline = null;
    inst.connectedAt = now;
    inst.lastActivity = now;
    this.log(inst.label, resumed ? `resumed (${this.tabsOf(instanceId).length} tabs)` : 'connected');
    this._changed(true);
    return { resumed, tabs: this.tabsOf(instanceId) };
  }

  /** `instance.updated`: the client named itself. */
  rename(instanceId, name) {
    const inst = this.instances.get(instanceId);
    if (!inst) return;
    const n = cleanName(name);
    if (n === inst.name) return;
    inst.name = n;
    inst.label = uniqueLabel(n, this._others(inst, 'label'));
    this._changed(true);
    this.hooks.relabeled(instanceId);
  }

  /**
   * A connection closed. Only the instance's current connection counts: a
   * replaced connection closing later changes nothing. Starts the grace period.
   */
  disconnect(instanceId, conn) {
    const inst = this.instances.get(instanceId);
    if (!inst || inst.conn !== conn) return false;
    const now = this.clock.now();
    inst.conn = null;
    inst.status = 'grace';
    inst.graceDeadline = now + inst.graceMs;
    // Claims made on that connection can no longer be answered. Their queue
    // entries stay as place holders: a claim of the same tab after a reconnect
    // within the grace takes the same place.
    for (const rec of this.tabs.values()) {
      for (const w of rec.queue) {
        if (w.conn === conn) this._settle(w, 'reject', err(Codes.INTERNAL, 'connection closed'));
      }
    }
    this.log(inst.label, `disconnected; grace ${inst.graceMs} ms`);
    this._changed(true);
    return true;
  }

  /** The instance is known to be gone for good (its port answers another instance): end its grace now. */
  gone(instanceId) {
    const inst = this.instances.get(instanceId);
    if (!inst) return;
    if (inst.conn && this.hooks.isOpen(inst.conn)) return; // still talking to us: not gone
    this._expire(inst);
    this._changed(true);
  }

  isKnown(instanceId) {
    return this.instances.has(instanceId);
  }

  instance(instanceId) {
    return this.instances.get(instanceId) || null;
  }

  // --------------------------------------------------------------------- tabs

  /** A tab the instance just created: held from birth. */
  created(instanceId, tabId) {
    const inst = this._live(instanceId);
    const now = this.clock.now();
    inst.lastActivity = now;
    inst.lost.delete(tabId);
    inst.closed.delete(tabId);
    this.tabs.set(tabId, this._newRecord(tabId, instanceId, true, now));
    this._changed(true);
  }

  /**
   * Claim a tab for `instanceId` (request arrived on `conn`). Resolves with
   * {tabId} once granted and prepared (debugger attached); rejects with
   * TAB_BUSY after timeoutMs, TAB_CLOSED when the tab goes away, or the
   * error of prepareGrant (e.g. NOT_ATTACHABLE).
   */
  claim(instanceId, conn, tabId, timeoutMs) {
    let inst;
    try {
      inst = this._live(instanceId, conn);
    } catch (e) {
      return Promise.reject(e);
    }
    const now = this.clock.now();
    inst.lastActivity = now;
    const rec = this.tabs.get(tabId);
    if (!rec) {
      const fresh = this._newRecord(tabId, instanceId, false, now);
      this.tabs.set(tabId, fresh);
      inst.lost.delete(tabId);
      inst.closed.delete(tabId);
      this._changed(true);
      return new Promise((resolve, reject) => {
        this._grant(fresh, { instanceId, conn, resolve, reject }, null);
      });
    }
    if (rec.closing) return Promise.reject(this._closedError(tabId, rec.closing));
    if (rec.holder === instanceId) {
      rec.lastUsed = now;
      this._changed(false);
      return Promise.resolve({ tabId });
    }
    const timeout = Math.max(0, Math.min(Number.isFinite(timeoutMs) ? timeoutMs : 30_000, MAX_CLAIM_TIMEOUT_MS));
    return new Promise((resolve, reject) => {
      const w = { instanceId, conn, deadline: now + timeout, since: now, seq: ++this.seq, resolve, reject };
      const i = rec.queue.findIndex((x) => x.instanceId === instanceId);
      if (i >= 0) {
        // Same instance again (e.g. after a reconnect within its grace): it keeps its place.
        this._settle(rec.queue[i], 'reject', err(Codes.BAD_REQUEST, `superseded by a newer claim of tab ${tabId}`));
        w.since = rec.queue[i].since;
        rec.queue[i] = w;
      } else {
        rec.queue.push(w);
      }
      this.log(inst.label, `waits for tab ${tabId} (position ${rec.queue.indexOf(w) + 1}, timeout ${timeout} ms)`);
      this._changed(true);
    });
  }

  /** Give a held tab back without closing it; the next live waiter gets it. */
  release(instanceId, tabId) {
    const waiting = this.tabs.get(tabId);
    const i = waiting && waiting.holder !== instanceId ? waiting.queue.findIndex((w) => w.instanceId === instanceId) : -1;
    if (i >= 0) {
      // A waiter that gives up (its client cancelled the call) leaves the queue.
      const [w] = waiting.queue.splice(i, 1);
      this._settle(w, 'reject', err(Codes.BAD_REQUEST, `the claim of tab ${tabId} was withdrawn`));
      this.log(this._label(instanceId), `stops waiting for tab ${tabId}`);
      this._changed(true);
      return;
    }
    const rec = this._held(instanceId, tabId);
    this.instances.get(instanceId).lastActivity = this.clock.now();
    this.log(this._label(instanceId), `releases tab ${tabId}`);
    this._handOver(rec);
    this._changed(true);
  }

  /**
   * The user takes a held tab back (from the popup). The holder's next command on it
   * fails with TAKEN_BACK (it is told at once with `tab.takenBack`); its waiters'
   * claims fail with TAKEN_BACK too; the tab becomes free and stays open.
   * Returns whether the tab was held.
   */
  takeBack(tabId) {
    const rec = this.tabs.get(tabId);
    if (!rec || rec.closing) return false;
    const now = this.clock.now();
    const holder = this.instances.get(rec.holder);
    if (holder) {
      remember(holder.lost, tabId, { user: true, at: now });
      holder.closed.delete(tabId);
      this._emit(rec.holder, 'tab.takenBack', { tabId });
    }
    for (const w of rec.queue) this._settle(w, 'reject', err(Codes.TAKEN_BACK, `the user took tab ${tabId} back; it is not for clients now`, { tabId }));
    rec.queue.length = 0;
    this.tabs.delete(tabId);
    this._inflight.delete(tabId);
    this.log(this._label(rec.holder), `the user took tab ${tabId} back`);
    const { holder: from, origGroupId, created } = rec;
    this.serial(tabId, () => this.hooks.released(tabId, from, { handedTo: null, origGroupId, takenBack: true, created }));
    this._changed(true);
    return true;
  }

  /**
   * Close a held tab on its holder's request. Resolves once the tab is gone;
   * waiters get TAB_CLOSED.
   */
  close(instanceId, tabId) {
    let rec;
    try {
      rec = this._held(instanceId, tabId);
    } catch (e) {
      return Promise.reject(e);
    }
    this.instances.get(instanceId).lastActivity = this.clock.now();
    return this._close(rec, 'holder').then((gone) => {
      if (!gone) throw err(Codes.INTERNAL, `tab ${tabId} could not be closed`);
    });
  }

  /**
   * Check that `instanceId` holds `tabId` and renew the lease. Throws NOT_HELD,
   * LOCK_LOST or TAB_CLOSED.
   */
  check(instanceId, tabId) {
    const rec = this._held(instanceId, tabId);
    const now = this.clock.now();
    rec.lastUsed = now;
    this.instances.get(instanceId).lastActivity = now;
    this._changed(false);
    return rec;
  }

  /**
   * Like check, and marks a command in flight until the returned function is
   * called: a holder busy with a long command is not idle.
   */
  use(instanceId, tabId) {
    this.check(instanceId, tabId);
    this._inflight.set(tabId, (this._inflight.get(tabId) || 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this._inflight.get(tabId) || 1) - 1;
      if (n > 0) this._inflight.set(tabId, n);
      else this._inflight.delete(tabId);
      const rec = this.tabs.get(tabId);
      if (rec && rec.holder === instanceId) {
        rec.lastUsed = this.clock.now();
        this._changed(false);
      }
    };
  }

  /** chrome.tabs.onRemoved. */
  tabRemoved(tabId) {
    const rec = this.tabs.get(tabId);
    if (!rec) return;
    this._tabGone(rec, rec.closing || 'user');
    this._changed(true);
  }

  /** Remember the group a borrowed tab was in before it joined its holder's group. */
  setOrigGroup(tabId, groupId) {
    const rec = this.tabs.get(tabId);
    if (rec && rec.origGroupId === undefined) {
      rec.origGroupId = groupId;
      this._changed(true);
    }
  }

  /**
   * Remember the browser's target id of a held tab (unique across browser sessions,
   * unlike tab ids): a state restored after the extension reloaded is checked
   * against it, so a record never lands on another session's tab of the same id.
   */
  setTarget(tabId, targetId) {
    const rec = this.tabs.get(tabId);
    if (rec && typeof targetId === 'string' && targetId && rec.targetId !== targetId) {
      rec.targetId = targetId;
      this._changed(true);
    }
  }

  /** Run `fn` after every earlier side effect on this tab (attach, detach, group, close). */
  serial(tabId, fn) {
    const prev = this._chains.get(tabId) || Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(noop);
    this._chains.set(tabId, tail);
    tail.then(() => {
      if (this._chains.get(tabId) === tail) this._chains.delete(tabId);
    });
    return next;
  }

  // ------------------------------------------------------------------ queries

  holderOf(tabId) {
    const rec = this.tabs.get(tabId);
    return rec ? this._holderInfo(rec) : null;
  }

  /** Who waits for the tab, first in line first: `[{instanceId, name, waitedMs}]`. */
  waitersOf(tabId, now) {
    const rec = this.tabs.get(tabId);
    if (!rec) return [];
    return rec.queue.map((w) => ({ instanceId: w.instanceId, name: this._label(w.instanceId), waitedMs: now - w.since }));
  }

  record(tabId) {
    return this.tabs.get(tabId) || null;
  }

  /** Tab ids the instance holds, in the order it got them. */
  tabsOf(instanceId) {
    return [...this.tabs.values()]
      .filter((r) => r.holder === instanceId && !r.closing)
      .sort((a, b) => a.seq - b.seq)
      .map((r) => r.tabId);
  }

  waiting(tabId) {
    const rec = this.tabs.get(tabId);
    return rec ? rec.queue.length : 0;
  }

  /** A plain view for the popup. */
  status() {
    const now = this.clock.now();
    const instances = [...this.instances.values()].map((i) => ({
      instanceId: i.instanceId,
      name: i.name,
      label: i.label,
      color: i.color,
      port: i.port,
      userTabs: i.userTabs,
      status: i.status,
      graceLeftMs: i.graceDeadline != null ? Math.max(0, i.graceDeadline - now) : null,
      lastActivityMs: now - i.lastActivity,
      leaseMs: i.leaseMs,
      lost: [...i.lost.keys()],
      closed: [...i.closed.keys()],
      tabs: this.tabsOf(i.instanceId),
    }));
    const tabs = [...this.tabs.values()].map((r) => ({
      tabId: r.tabId,
      holder: this._holderInfo(r),
      created: r.created,
      closing: r.closing || null,
      heldForMs: now - r.since,
      leaseAgeMs: now - r.lastUsed,
      waiters: r.queue.map((w) => ({
        instanceId: w.instanceId,
        label: this._label(w.instanceId),
        waitedMs: now - w.since,
        timeoutInMs: w.deadline - now,
        live: this._alive(w, now),
      })),
    }));
    return { instances, tabs };
  }

  // -------------------------------------------------------------- persistence

  snapshot() {
    return {
      v: SNAPSHOT_VERSION,
      seq: this.seq,
      instances: [...this.instances.values()].map((i) => ({
        instanceId: i.instanceId,
        name: i.name,
        label: i.label,
        color: i.color,
        leaseMs: i.leaseMs,
        graceMs: i.graceMs,
        port: i.port,
        userTabs: i.userTabs,
        status: i.status,
        graceDeadline: i.graceDeadline,
        lastActivity: i.lastActivity,
        lost: [...i.lost],
        closed: [...i.closed],
      })),
      tabs: [...this.tabs.values()].map((r) => ({
        tabId: r.tabId,
        holder: r.holder,
        holderLabel: r.holderLabel,
        created: r.created,
        since: r.since,
        lastUsed: r.lastUsed,
        seq: r.seq,
        origGroupId: r.origGroupId,
        targetId: r.targetId,
        closing: r.closing,
        queue: r.queue.map((w) => ({ instanceId: w.instanceId, deadline: w.deadline, since: w.since, seq: w.seq })),
      })),
    };
  }

  /**
   * A manager from a stored snapshot, after the service worker restarted.
   * Every connection died with the old worker: connected instances start their
   * grace period now (instances already in grace keep their deadline), and
   * queued claims are dropped (nobody can receive their answer). Holders,
   * created/borrowed flags, leases and lost/closed tabs are kept. Call
   * resume() once the browser's tabs have been reconciled.
   */
  static restore(snapshot, opts) {
    const m = new LockManager(opts);
    if (!snapshot || snapshot.v !== SNAPSHOT_VERSION) return m;
    const now = m.clock.now();
    m.seq = Number.isSafeInteger(snapshot.seq) ? snapshot.seq : 0;
    for (const s of Array.isArray(snapshot.instances) ? snapshot.instances : []) {
      if (!s || typeof s.instanceId !== 'string') continue;
      const graceMs = Number.isFinite(s.graceMs) ? s.graceMs : DEFAULT_GRACE_MS;
      m.instances.set(s.instanceId, {
        instanceId: s.instanceId,
        name: cleanName(s.name),
        label: typeof s.label === 'string' && s.label ? s.label : cleanName(s.name),
        color: typeof s.color === 'string' ? s.color : '',
        leaseMs: Number.isFinite(s.leaseMs) ? s.leaseMs : DEFAULT_LEASE_MS,
        graceMs,
        port: s.port ?? null,
        userTabs: normalizePolicy(s.userTabs),
        status: 'grace',
        conn: null,
        graceDeadline: s.status === 'grace' && Number.isFinite(s.graceDeadline) ? s.graceDeadline : now + graceMs,
        connectedAt: now,
        lastActivity: Number.isFinite(s.lastActivity) ? s.lastActivity : now,
        lost: new Map(Array.isArray(s.lost) ? s.lost : []),
        closed: new Map(Array.isArray(s.closed) ? s.closed : []),
      });
    }
    for (const s of Array.isArray(snapshot.tabs) ? snapshot.tabs : []) {
      if (!s || !Number.isSafeInteger(s.tabId) || typeof s.holder !== 'string') continue;
      const rec = m._newRecord(s.tabId, s.holder, !!s.created, Number.isFinite(s.since) ? s.since : now);
      rec.lastUsed = Number.isFinite(s.lastUsed) ? s.lastUsed : now;
      rec.seq = Number.isSafeInteger(s.seq) ? s.seq : ++m.seq;
      rec.origGroupId = s.origGroupId;
      if (typeof s.targetId === 'string') rec.targetId = s.targetId;
      rec.closing = s.closing || false;
      rec.holderLabel = s.holderLabel || '';
      m.tabs.set(s.tabId, rec);
    }
    return m;
  }

  /**
   * After restore and reconciliation: finish the closes that were under way and
   * run every decision that came due while the worker was stopped.
   */
  resume() {
    for (const rec of [...this.tabs.values()]) {
      if (rec.closing) {
        const reason = rec.closing;
        rec.closing = false;
        this._close(rec, reason);
      } else if (!this.instances.has(rec.holder)) {
        this._handOver(rec);
      }
    }
    this._changed(true);
  }

  dispose() {
    this._disposed = true;
    if (this._timer) this.clock.clearTimeout(this._timer);
    if (this._lazyTimer) this.clock.clearTimeout(this._lazyTimer);
    this._timer = this._lazyTimer = null;
  }

  // ---------------------------------------------------------------- internals

  _newRecord(tabId, holder, created, now) {
    return {
      tabId,
      holder,
      holderLabel: this._label(holder),
      created,
      since: now,
      lastUsed: now,
      seq: ++this.seq,
      origGroupId: undefined,
      targetId: undefined,
      closing: false,
      queue: [],
    };
  }

  _others(inst, key) {
    return [...this.instances.values()].filter((i) => i !== inst).map((i) => i[key]);
  }

  _label(instanceId) {
    const i = this.instances.get(instanceId);
    return i ? i.label : instanceId;
  }

  _holderInfo(rec) {
    const i = this.instances.get(rec.holder);
    return { instanceId: rec.holder, name: i ? i.label : rec.holderLabel || rec.holder };
  }

  /** The instance, which must be connected (on `conn` when given). */
  _live(instanceId, conn) {
    const inst = this.instances.get(instanceId);
    if (!inst || inst.status !== 'connected' || (conn !== undefined && inst.conn !== conn)) {
      throw err(Codes.INTERNAL, `instance ${instanceId} is not connected`);
    }
    return inst;
  }

  /** The record of a tab `instanceId` holds, or the right error. */
  _held(instanceId, tabId) {
    const rec = this.tabs.get(tabId);
    if (rec && rec.holder === instanceId) {
      if (rec.closing) throw this._closedError(tabId, rec.closing);
      return rec;
    }
    const inst = this.instances.get(instanceId);
    const lost = inst && inst.lost.get(tabId);
    if (lost && lost.user) {
      throw err(Codes.TAKEN_BACK, `the user took tab ${tabId} back in the browser; it is not yours any more. Ask the user before claiming it again, or use your own tab`, { tabId });
    }
    if (lost) {
      throw err(Codes.LOCK_LOST, `tab ${tabId} was handed to "${lost.to.name}" after ${secs(lost.idleMs)} idle while it waited; claim it again to wait for it`, { tabId, to: lost.to, idleMs: lost.idleMs });
    }
    const closed = inst && inst.closed.get(tabId);
    if (closed) throw this._closedError(tabId, closed);
    throw err(Codes.NOT_HELD, `tab ${tabId} is not one of your tabs; claim it first`, { tabId });
  }

  _closedError(tabId, reason) {
    const why = { user: 'closed by the user', 'creator-left': 'closed because the instance that created it left', holder: 'closed by its holder', crashed: 'gone (crashed)' }[reason] || 'closed';
    return err(Codes.TAB_CLOSED, `tab ${tabId} is ${why}`, { tabId, reason });
  }

  _alive(w, now = this.clock.now()) {
    return w.deadline > now && this._connected(w);
  }

  /** The TAB_BUSY answer for a waiter with `waitingBefore` waiters ahead of it. */
  _busy(rec, waitingBefore, now) {
    const holder = this._holderInfo(rec);
    const heldForMs = now - rec.since;
    return err(Codes.TAB_BUSY, `tab ${rec.tabId} is held by "${holder.name}" for ${secs(heldForMs)}; ${waitingBefore} waiting before you`, { tabId: rec.tabId, holder, heldForMs, waitingBefore });
  }

  /** Whether a waiter's connection is still its instance's open connection. */
  _connected(w) {
    const inst = this.instances.get(w.instanceId);
    return !!w.resolve && !!inst && inst.status === 'connected' && inst.conn === w.conn && this.hooks.isOpen(w.conn);
  }

  _settle(w, how, value) {
    const fn = w[how];
    w.resolve = w.reject = null;
    if (fn) fn(value);
  }

  _emit(instanceId, event, params) {
    const inst = this.instances.get(instanceId);
    if (inst && inst.conn && this.hooks.isOpen(inst.conn)) {
      try {
        this.hooks.emit(instanceId, inst.conn, event, params);
      } catch (e) {
        this.log(inst.label, `emit ${event} failed: ${e.message}`);
      }
    }
  }

  /**
   * The holder lets go of `rec` (release, lease, holder left). The first live
   * waiter gets it; dead waiters ahead of it are dropped. With nobody left the
   * tab becomes free and its record is dropped.
   */
  _handOver(rec) {
    const from = rec.holder;
    const now = this.clock.now();
    while (rec.queue.length) {
      const w = rec.queue.shift();
      if (!this._alive(w, now)) {
        // Past its deadline (its timer has not run yet, e.g. a try-lock): TAB_BUSY, as
        // the timer would have said. Otherwise nobody is left to hear the answer.
        if (w.deadline <= now && this._connected(w)) this._settle(w, 'reject', this._busy(rec, 0, now));
        else this._settle(w, 'reject', err(Codes.INTERNAL, 'waiter gone'));
        continue;
      }
      rec.holderLabelBefore = rec.holderLabel;
      rec.holder = w.instanceId;
      rec.holderLabel = this._label(w.instanceId);
      rec.created = false;
      rec.since = now;
      rec.lastUsed = now;
      rec.seq = ++this.seq;
      this._inflight.delete(rec.tabId);
      this._grant(rec, w, from);
      return;
    }
    this.tabs.delete(rec.tabId);
    this._inflight.delete(rec.tabId);
    const origGroupId = rec.origGroupId;
    this.serial(rec.tabId, () => this.hooks.released(rec.tabId, from, { handedTo: null, origGroupId }));
  }

  /** Prepare the grant of `rec` (already assigned to w.instanceId), then answer the claim. */
  _grant(rec, w, from) {
    const { tabId } = rec;
    const to = w.instanceId;
    const grantSeq = rec.seq;
    const inst = this.instances.get(to);
    if (inst) {
      inst.lost.delete(tabId);
      inst.closed.delete(tabId);
    }
    const fromLabel = from ? (this.instances.has(from) ? this._label(from) : rec.holderLabelBefore || from) : '';
    this.log(this._label(to), `granted tab ${tabId}${from ? ` (from ${fromLabel})` : ''}`);
    const still = () => {
      const r = this.tabs.get(tabId);
      return r && r.holder === to && r.seq === grantSeq && !r.closing ? r : null;
    };
    this.serial(tabId, async () => {
      if (from) await this.hooks.released(tabId, from, { handedTo: to, origGroupId: rec.origGroupId });
      if (!still()) throw null; // eslint-disable-line no-throw-literal
      await this.hooks.prepareGrant(tabId, to, { created: false });
    }).then(
      () => {
        const r = still();
        if (r) {
          r.lastUsed = this.clock.now();
          this._settle(w, 'resolve', { tabId });
        } else {
          this._settle(w, 'reject', this._afterGrantError(tabId, to));
        }
        this._changed(true);
      },
      (e) => {
        if (e === null) {
          this._settle(w, 'reject', this._afterGrantError(tabId, to));
          return;
        }
        this._settle(w, 'reject', e);
        const r = still();
        if (r) {
          this.log(this._label(to), `grant of tab ${tabId} failed (${e && e.code ? e.code : e}); passing it on`);
          this._handOver(r);
          this._changed(true);
        }
      },
    );
  }

  _afterGrantError(tabId, instanceId) {
    try {
      this._held(instanceId, tabId);
      return err(Codes.INTERNAL, `tab ${tabId}: grant raced`);
    } catch (e) {
      return e;
    }
  }

  /** Close a held tab; the lock is released only once the tab is gone. Resolves to gone?. */
  _close(rec, reason) {
    const { tabId } = rec;
    rec.closing = reason;
    this._changed(true);
    return this.serial(tabId, async () => {
      let gone = false;
      try {
        gone = await this.hooks.closeTab(tabId);
      } catch (e) {
        this.log(this._label(rec.holder), `closing tab ${tabId} failed: ${e && e.message}`);
      }
      return gone;
    }).then((gone) => {
      const r = this.tabs.get(tabId);
      if (r !== rec) return true; // onRemoved already handled it
      if (gone) {
        this._tabGone(r, reason);
      } else {
        // The tab survived: it is not closing any more. A holder that asked
        // keeps it; a tab whose creator left goes to its waiters.
        r.closing = false;
        if (!this.instances.has(r.holder) || reason === 'creator-left') this._handOver(r);
      }
      this._changed(true);
      return gone;
    });
  }

  /** The tab no longer exists: tell its holder and fail every waiter at once. */
  _tabGone(rec, reason) {
    const { tabId } = rec;
    this.tabs.delete(tabId);
    this._inflight.delete(tabId);
    const holder = this.instances.get(rec.holder);
    if (holder) {
      remember(holder.closed, tabId, reason);
      holder.lost.delete(tabId);
      if (reason !== 'holder') this._emit(rec.holder, 'tab.closed', { tabId, reason });
    }
    const told = new Set([rec.holder]);
    for (const w of rec.queue) {
      this._settle(w, 'reject', this._closedError(tabId, reason));
      if (!told.has(w.instanceId)) {
        told.add(w.instanceId);
        this._emit(w.instanceId, 'tab.closed', { tabId, reason });
      }
    }
    rec.queue.length = 0;
    this.log(holder ? holder.label : rec.holderLabel, `tab ${tabId} gone (${reason})`);
    try {
      this.hooks.tabGone(tabId);
    } catch (e) {
      this.log('-', `tabGone hook: ${e.message}`);
    }
  }

  /** The grace period is over (or the instance is known gone): let go of everything. */
  _expire(inst) {
    const id = inst.instanceId;
    this.instances.delete(id);
    this.log(inst.label, 'gone; closing its tabs, releasing borrowed ones');
    for (const rec of [...this.tabs.values()]) {
      rec.queue = rec.queue.filter((w) => {
        if (w.instanceId !== id) return true;
        this._settle(w, 'reject', err(Codes.INTERNAL, 'instance gone'));
        return false;
      });
    }
    for (const rec of [...this.tabs.values()]) {
      if (rec.holder !== id) continue;
      rec.holderLabel = inst.label;
      if (rec.closing) continue;
      if (rec.created) this._close(rec, 'creator-left');
      else this._handOver(rec);
    }
    this.hooks.relabeled(id);
    this.hooks.instanceGone(id);
  }

  _tick() {
    this._timer = null;
    this._timerAt = Infinity;
    if (this._disposed) return;
    const now = this.clock.now();
    let changed = false;
    for (const inst of [...this.instances.values()]) {
      if (inst.status === 'grace' && inst.graceDeadline <= now) {
        this._expire(inst);
        changed = true;
      }
    }
    for (const rec of [...this.tabs.values()]) {
      if (this.tabs.get(rec.tabId) !== rec) continue;
      // Waiters past their deadline: TAB_BUSY naming the holder.
      for (let i = 0; i < rec.queue.length; ) {
        const w = rec.queue[i];
        if (w.deadline <= now) {
          rec.queue.splice(i, 1);
          changed = true;
          if (w.resolve) {
            const e = this._busy(rec, i, now);
            this.log(this._label(w.instanceId), `claim of tab ${rec.tabId} timed out (held by ${e.data.holder.name} for ${e.data.heldForMs} ms)`);
            this._settle(w, 'reject', e);
          }
        } else i++;
      }
      // Lease: an idle holder loses the tab only while a live waiter waits.
      if (!rec.closing && rec.queue.length && !this._inflight.get(rec.tabId)) {
        const holder = this.instances.get(rec.holder);
        const leaseMs = holder ? holder.leaseMs : 0;
        const idleMs = now - rec.lastUsed;
        const next = rec.queue.find((w) => this._alive(w, now));
        if (next && idleMs >= leaseMs) {
          const to = { instanceId: next.instanceId, name: this._label(next.instanceId) };
          if (holder) {
            remember(holder.lost, rec.tabId, { to, idleMs, at: now });
            this.log(holder.label, `lost tab ${rec.tabId} to ${to.name} after ${idleMs} ms idle`);
            this._emit(holder.instanceId, 'tab.lost', { tabId: rec.tabId, to, idleMs });
          }
          this._handOver(rec);
          changed = true;
        }
      }
    }
    if (changed) this._changed(true);
    else this._schedule();
  }

  _nextDeadline() {
    let at = Infinity;
    for (const inst of this.instances.values()) {
      if (inst.status === 'grace') at = Math.min(at, inst.graceDeadline);
    }
    const now = this.clock.now();
    for (const rec of this.tabs.values()) {
      if (!rec.queue.length) continue;
      for (const w of rec.queue) at = Math.min(at, w.deadline);
      if (!rec.closing && !this._inflight.get(rec.tabId) && rec.queue.some((w) => this._alive(w, now))) {
        const holder = this.instances.get(rec.holder);
        at = Math.min(at, rec.lastUsed + (holder ? holder.leaseMs : 0));
      }
    }
    return at;
  }

  _schedule() {
    if (this._disposed) return;
    const at = this._nextDeadline();
    if (at === this._timerAt && this._timer) return;
    if (this._timer) this.clock.clearTimeout(this._timer);
    this._timer = null;
    this._timerAt = at;
    if (at === Infinity) return;
    this._timer = this.clock.setTimeout(() => this._tick(), Math.max(0, at - this.clock.now()));
  }

  /** State changed: persist (now when urgent, lazily for lease renewals) and re-arm the timer. */
  _changed(urgent) {
    if (this._disposed) return;
    if (urgent) {
      if (this._lazyTimer) {
        this.clock.clearTimeout(this._lazyTimer);
        this._lazyTimer = null;
      }
      this._persist(true);
    } else if (!this._lazyTimer) {
      this._lazyTimer = this.clock.setTimeout(() => {
        this._lazyTimer = null;
        this._persist(false);
      }, LAZY_PERSIST_MS);
    }
    this._schedule();
  }

  _persist(urgent) {
    try {
      this.hooks.persist(this.snapshot(), { urgent });
    } catch (e) {
      this.log('-', `persist failed: ${e.message}`);
    }
  }
}

export function createLockManager(opts) {
  return new LockManager(opts);
}
