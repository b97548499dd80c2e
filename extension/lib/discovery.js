// Discovery of tabmux instances: a cheap HTTP probe of every port of the range,
// a WebSocket only to ports whose probe answers a tabmux not yet connected.
// Never two attempts at one port at once. Pure: fetch, clock and the connect
// step are injected.
//
// The probe says only "a tabmux is here" and its protocol: which instance it is
// comes with the authenticated hello. A port whose tabmux does not know our
// secret (another user's or installation's) is tried again only every
// FOREIGN_RETRY_MS, and logged once, until the port is seen empty.

export const DEFAULT_RANGE = Object.freeze({ from: 8765, to: 8775 });
export const MAX_RANGE_PORTS = 64;
export const PROBE_TIMEOUT_MS = 300;
/** One round every ROUND_MS; each port is probed when its own schedule says so. */
export const ROUND_MS = 250;
/**
 * Probe backoff of a port with nothing on it: 250, 500, 700, 700… ms, so an instance
 * that starts just after its port was probed is still connected within 1 s.
 */
export const PROBE_BACKOFF_MS = [250, 500, 700];
/** A connected port is still probed (a changed instanceId means the old instance is gone). */
export const CONNECTED_PROBE_MS = 2_000;
/** WebSocket backoff after failed handshakes to the same instance: 0.5, 1, 2 … 30 s. */
export const WS_BACKOFF_BASE_MS = 500;
export const WS_BACKOFF_MAX_MS = 30_000;
/** How often the worker is kept awake with an extension API call while discovery runs. */
export const KEEPALIVE_MS = 5_000;
/** A connection that closes within this time of opening counts as a failure. */
export const FLAP_MS = 5_000;
/** A tabmux that failed authentication (or speaks another protocol) is retried this often. */
export const FOREIGN_RETRY_MS = 30_000;

export function validRange(from, to) {
  return (
    Number.isInteger(from) && Number.isInteger(to) && from >= 1024 && to <= 65535 && from <= to && to - from + 1 <= MAX_RANGE_PORTS
  );
}

/**
 * GET http://127.0.0.1:<port>/tabmux with a short timeout. Resolves to the
 * probe body when it is a tabmux, else null. Never rejects.
 */
export async function httpProbe(fetchFn, port, { timeoutMs = PROBE_TIMEOUT_MS, setTimeout: st = setTimeout, clearTimeout: ct = clearTimeout } = {}) {
  const ctrl = new AbortController();
  const timer = st(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetchFn(`http://127.0.0.1:${port}/tabmux`, {
      signal: ctrl.signal,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
    if (!res || res.status !== 200) return null;
    const text = await res.text();
    if (text.length > 16_384) return null;
    const body = JSON.parse(text);
    if (!body || body.tabmux !== 1) return null;
    return { tabmux: 1, protocol: body.protocol };
  } catch {
    return null;
  } finally {
    ct(timer);
  }
}

export class Discovery {
  /**
   * @param o.clock      {now, setTimeout, clearTimeout}
   * @param o.probe      (port) → Promise<probe body | null>
   * @param o.connect    (port, probeBody) → Promise<{ok:true, instanceId} | {ok:false, mismatch?, foreign?}>
   *                     resolves once the hello succeeded or the attempt failed
   * @param o.onGone     (port, instanceId) the instance last connected on a port was replaced by another
   * @param o.onMismatch (port, probeBody, message) the instance speaks another protocol
   * @param o.onForeign  (port, message) the tabmux on the port does not know our secret (once per occupant)
   * @param o.keepAlive  () an extension API call that keeps the service worker awake
   */
  constructor({ clock, probe, connect, onGone = () => {}, onMismatch = () => {}, onForeign = () => {}, keepAlive = () => {}, log = () => {}, range = DEFAULT_RANGE }) {
    this.clock = clock;
    this.probe = probe;
    this.connect = connect;
    this.onGone = onGone;
    this.onMismatch = onMismatch;
    this.onForeign = onForeign;
    this.keepAlive = keepAlive;
    this.log = log;
    this.ports = new Map();
    this.range = { from: range.from, to: range.to };
    this._timer = null;
    this._running = false;
    this._lastKeepAlive = -Infinity;
    this.rounds = 0;
  }

  _port(p) {
    let s = this.ports.get(p);
    if (!s) {
      s = { port: p, busy: false, failures: 0, nextAt: 0, instanceId: null, lastInstanceId: null, seen: null, mismatch: false, foreign: false, wsFailures: 0, wsNextAt: 0 };
      this.ports.set(p, s);
    }
    return s;
  }

  setRange(from, to) {
    if (!validRange(from, to)) throw new Error(`invalid port range ${from}-${to}`);
    this.range = { from, to };
    for (const [p, s] of this.ports) if ((p < from || p > to) && !s.busy && !s.instanceId) this.ports.delete(p);
    this.kick();
  }

  start() {
    if (this._running) return;
    this._running = true;
    this.round();
  }

  stop() {
    this._running = false;
    if (this._timer) this.clock.clearTimeout(this._timer);
    this._timer = null;
  }

  /**
   * The secret changed (the user paired): every port without a connection gets a fresh
   * chance at once, including those that failed authentication.
   */
  retryAll() {
    for (const s of this.ports.values()) {
      if (s.instanceId) continue;
      s.foreign = false;
      s.wsFailures = 0;
      s.wsNextAt = 0;
    }
    this.kick();
  }

  /** Run a round now (e.g. the worker was woken by an alarm). */
  kick() {
    if (!this._running) return this.start();
    for (const s of this.ports.values()) if (!s.instanceId) s.nextAt = 0;
    if (this._timer) this.clock.clearTimeout(this._timer);
    this._timer = null;
    this.round();
  }

  /**
   * The connection of `port` closed: probe it again at once. A connection that
   * lived less than FLAP_MS counts as a failed attempt (backoff), so a server
   * that accepts and drops at once is not hammered.
   */
  disconnected(port, instanceId, { livedMs = Infinity } = {}) {
    const s = this.ports.get(port);
    if (!s || (instanceId && s.instanceId !== instanceId)) return;
    s.instanceId = null;
    s.nextAt = 0;
    s.failures = 0;
    if (livedMs < FLAP_MS) {
      s.wsFailures++;
      s.wsNextAt = this.clock.now() + Math.min(WS_BACKOFF_MAX_MS, WS_BACKOFF_BASE_MS * 2 ** (s.wsFailures - 1));
    } else {
      s.wsFailures = 0;
      s.wsNextAt = 0;
    }
  }

  /** Which instance is connected on which port, and the protocol mismatches, for the popup. */
  view() {
    return [...this.ports.values()]
      .filter((s) => s.seen || s.instanceId || s.mismatch || s.foreign)
      .map((s) => ({ port: s.port, instanceId: s.instanceId, seen: s.seen, mismatch: s.mismatch, foreign: s.foreign }));
  }

  round() {
    this._timer = null;
    if (!this._running) return;
    this.rounds++;
    const now = this.clock.now();
    if (now - this._lastKeepAlive >= KEEPALIVE_MS) {
      this._lastKeepAlive = now;
      try {
        Promise.resolve(this.keepAlive()).catch(() => {});
      } catch {
        /* ignore */
      }
    }
    for (let p = this.range.from; p <= this.range.to; p++) {
      const s = this._port(p);
      if (s.busy || now < s.nextAt) continue;
      this._probe(s);
    }
    this._timer = this.clock.setTimeout(() => this.round(), ROUND_MS);
  }

  async _probe(s) {
    s.busy = true;
    let body = null;
    try {
      body = await this.probe(s.port);
    } catch {
      body = null;
    }
    const now = this.clock.now();
    if (!body) {
      s.busy = false;
      s.seen = null;
      s.failures++;
      s.nextAt = now + PROBE_BACKOFF_MS[Math.min(s.failures, PROBE_BACKOFF_MS.length) - 1];
      if (s.instanceId) {
        // The connected instance does not answer its probe; its socket will
        // tell (close, or the 60 s silence rule). Keep it.
        s.nextAt = now + PROBE_BACKOFF_MS[0];
      } else {
        // Nobody there: whoever comes next gets a fresh chance.
        s.mismatch = false;
        s.foreign = false;
        s.wsFailures = 0;
        s.wsNextAt = 0;
      }
      return;
    }
    s.failures = 0;
    s.seen = { protocol: body.protocol };
    if (s.instanceId) {
      s.busy = false;
      s.nextAt = now + CONNECTED_PROBE_MS;
      return;
    }
    if (body.protocol !== undefined && body.protocol !== 1) {
      if (!s.mismatch) this.onMismatch(s.port, body, `tabmux on port ${s.port} speaks protocol ${body.protocol}; this extension speaks 1`);
      s.mismatch = true;
      s.busy = false;
      s.nextAt = now + CONNECTED_PROBE_MS;
      return;
    }
    if (now < s.wsNextAt) {
      s.busy = false;
      s.nextAt = Math.min(s.wsNextAt, now + CONNECTED_PROBE_MS);
      return;
    }
    // The port stays busy through the WebSocket attempt.
    let res;
    try {
      res = await this.connect(s.port, body);
    } catch (e) {
      res = { ok: false, message: e && e.message };
    }
    this._attempted(s, res || { ok: false });
  }

  _attempted(s, res) {
    const t = this.clock.now();
    s.busy = false;
    if (res.ok) {
      s.instanceId = res.instanceId;
      s.mismatch = false;
      s.foreign = false;
      s.wsFailures = 0;
      s.nextAt = t + CONNECTED_PROBE_MS;
      const old = s.lastInstanceId;
      s.lastInstanceId = res.instanceId;
      if (old && old !== res.instanceId) {
        // The port now serves another instance: the old one is gone for good.
        this.log(`port ${s.port}: instance ${old} replaced by ${res.instanceId}`);
        try {
          this.onGone(s.port, old);
        } catch (e) {
          this.log(`onGone: ${e.message}`);
        }
      }
    } else if (res.mismatch || res.foreign) {
      if (res.foreign && !s.foreign) {
        try {
          this.onForeign(s.port, res.message || 'authentication failed');
        } catch (e) {
          this.log(`onForeign: ${e.message}`);
        }
      }
      if (res.mismatch) s.mismatch = true;
      if (res.foreign) s.foreign = true;
      s.wsNextAt = t + FOREIGN_RETRY_MS;
      s.nextAt = t + CONNECTED_PROBE_MS;
    } else {
      s.wsFailures++;
      const d = Math.min(WS_BACKOFF_MAX_MS, WS_BACKOFF_BASE_MS * 2 ** (s.wsFailures - 1));
      s.wsNextAt = t + d;
      s.nextAt = t + PROBE_BACKOFF_MS[0];
      this.log(`port ${s.port}: connection failed (${res.message || 'no reason'}); next try in ${d} ms`);
    }
  }
}
