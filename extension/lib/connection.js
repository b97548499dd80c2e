// One WebSocket to one tabmux instance: the authenticated hello, pings, the
// silence rule, pending requests with deadlines, and the size limit on what is
// sent. Each Connection object is one socket; once closed it never opens again,
// so "is this still the connection the request came on" is `conn.isOpen()` on
// the very object the request arrived on.
//
// The hello: tabmux sends a challenge (its nonce); the extension answers with
// `hello` carrying its own nonce and its proof of the secret; tabmux's reply
// carries its proof, checked here. Until then no request or event from the
// socket is acted on.

import { parseFrame, encodeFrame, tooLarge, request as mkRequest, reply as mkReply, errorReply, event as mkEvent, PROTOCOL_VERSION, MAX_OUT_BYTES, MAX_IN_BYTES } from './codec.js';
import { Codes, TabmuxError, toWireError } from './errors.js';
import { extensionProof, tabmuxProof, nonce as newNonce, isHex64, sameProof } from './auth.js';

export const PING_MS = 15_000;
export const SILENCE_MS = 60_000;
export const HELLO_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 20_000;
const WS_OPEN = 1;

let nextConnId = 1;

export class Connection {
  /**
   * @param o.port, o.url
   * @param o.WebSocket   constructor (injected)
   * @param o.clock       {now, setTimeout, clearTimeout, setInterval, clearInterval}
   * @param o.hello       params of the hello request (the nonce and proof are added)
   * @param o.secret      the secret shared with tabmux (64 hex digits)
   * @param o.onRequest   (conn, {id, method, params, trace}) — requests other than ping
   * @param o.onEvent     (conn, {event, params})
   * @param o.onClose     (conn, {code, reason, wasOpen})
   * @param o.log         (label, trace, msg)
   */
  constructor({ port, url, WebSocket, clock, hello, secret, onRequest, onEvent, onClose, log = () => {}, maxOutBytes = MAX_OUT_BYTES, maxInBytes = MAX_IN_BYTES }) {
    this.connId = nextConnId++;
    this.port = port;
    this.url = url || `ws://127.0.0.1:${port}/extension`;
    this.WebSocket = WebSocket;
    this.clock = clock;
    this.helloParams = hello;
    this.secret = secret;
    this.onRequest = onRequest || (() => {});
    this.onEvent = onEvent || (() => {});
    this.onClose = onClose || (() => {});
    this.log = log;
    this.maxOutBytes = maxOutBytes;
    this.maxInBytes = maxInBytes;
    this.state = 'new'; // new → connecting → challenge → hello → open → closed
    this.instanceId = null;
    this.info = null; // hello result
    this.label = `port ${port}`;
    this.openedAt = null;
    this.lastHeard = clock.now();
    this.lastActivity = clock.now();
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this._timers = [];
    this.stats = { sent: 0, received: 0, bytesOut: 0, bytesIn: 0 };
  }

  isOpen() {
    return this.state === 'open' && !!this.ws && this.ws.readyState === WS_OPEN;
  }

  /**
   * Open the socket and do the authenticated hello. Resolves {ok:true, hello} or
   * {ok:false, mismatch?, foreign?, message}; never rejects. `foreign`: the
   * instance does not know our secret (another user's or installation's tabmux).
   */
  open() {
    return new Promise((resolve) => {
      let settled = false;
      const done = (r) => {
        if (!settled) {
          settled = true;
          resolve(r);
        }
      };
      this._settleOpen = done;
      this.state = 'connecting';
      if (!isHex64(this.secret)) {
        this.state = 'closed';
        done({ ok: false, foreign: true, message: 'this copy of the extension has no secret: pair it (`tabmux extension pair`) or install it with `tabmux extension install DIR`' });
        return;
      }
      try {
        this.ws = new this.WebSocket(this.url);
      } catch (e) {
        this.state = 'closed';
        done({ ok: false, message: `WebSocket: ${e.message}` });
        return;
      }
      const helloTimer = this.clock.setTimeout(() => {
        done({ ok: false, message: 'no hello answer in time' });
        this.close(4000, 'hello timeout');
      }, HELLO_TIMEOUT_MS);
      this._timers.push(['t', helloTimer]);
      this._onChallenge = (params) => this._hello(params, helloTimer, done);
      this.ws.onopen = () => {
        this.state = 'challenge';
        this.lastHeard = this.clock.now();
      };
      this.ws.onmessage = (ev) => this._onMessage(ev.data);
      this.ws.onerror = () => {};
      this.ws.onclose = (ev) => this._closed(ev && ev.code, ev && ev.reason);
    });
  }

  /** tabmux's challenge came: prove the secret, then check tabmux's proof. */
  async _hello(params, helloTimer, done) {
    if (this.state !== 'challenge') return undefined;
    const fail = (r, code, reason) => {
      this.clock.clearTimeout(helloTimer);
      done({ ok: false, ...r });
      this.close(code, reason);
    };
    if (!params || params.protocol !== PROTOCOL_VERSION) {
      const theirs = params && params.protocol;
      return fail({ mismatch: true, message: `tabmux on port ${this.port} speaks protocol ${theirs}; this extension speaks ${PROTOCOL_VERSION}: update ${theirs > PROTOCOL_VERSION ? 'the extension' : 'tabmux'}` }, 4001, 'protocol mismatch');
    }
    if (!isHex64(params.nonce)) return fail({ message: 'the challenge has no valid nonce' }, 4000, 'bad challenge');
    const mine = newNonce();
    let result;
    try {
      const proof = extensionProof(this.secret, params.nonce, mine, this.port);
      this.state = 'hello';
      result = await this.request('hello', { ...this.helloParams, nonce: mine, proof }, HELLO_TIMEOUT_MS);
    } catch (err) {
      const mismatch = !!err && err.code === Codes.PROTOCOL_MISMATCH;
      const foreign = !!err && err.code === Codes.UNAUTHORIZED;
      return fail({ mismatch, foreign, message: err && err.message }, mismatch ? 4001 : 4000, 'hello failed');
    }
    if (this.state !== 'hello') return done({ ok: false, message: 'closed during hello' });
    if (!result || result.protocol !== PROTOCOL_VERSION || typeof result.instanceId !== 'string' || !result.instanceId) {
      const msg = `tabmux on port ${this.port} answered hello with protocol ${result && result.protocol}; this extension speaks ${PROTOCOL_VERSION}`;
      return fail({ mismatch: true, message: msg, hello: result }, 4001, 'protocol mismatch');
    }
    const expected = tabmuxProof(this.secret, params.nonce, mine, this.port, result.instanceId);
    if (!sameProof(result.proof, expected)) {
      return fail({ foreign: true, message: `the tabmux on port ${this.port} did not prove the secret (another user's or another installation's tabmux)` }, 4005, 'not authenticated');
    }
    this.clock.clearTimeout(helloTimer);
    const { proof: _p, ...info } = result;
    this.info = info;
    this.instanceId = info.instanceId;
    this.label = typeof info.name === 'string' && info.name ? info.name : this.instanceId;
    this.state = 'open';
    this.openedAt = this.clock.now();
    this._startLiveness();
    done({ ok: true, hello: info });
  }

  _startLiveness() {
    const ping = this.clock.setInterval(() => {
      if (this.state !== 'open') return;
      this.request('ping', {}, REQUEST_TIMEOUT_MS).catch(() => {});
    }, PING_MS);
    this._timers.push(['i', ping]);
    const watch = this.clock.setInterval(() => {
      if (this.state === 'open' && this.clock.now() - this.lastHeard >= SILENCE_MS) {
        this.log(this.label, null, `silent for ${SILENCE_MS / 1000} s; closing`);
        this.close(4002, 'silent');
      }
    }, 5_000);
    this._timers.push(['i', watch]);
  }

  _onMessage(data) {
    this.lastHeard = this.clock.now();
    this.stats.received++;
    if (typeof data === 'string') this.stats.bytesIn += data.length;
    const m = parseFrame(data, { maxBytes: this.maxInBytes });
    switch (m.kind) {
      case 'invalid':
        this.log(this.label, null, `bad frame: ${m.message}`);
        if (m.id !== undefined) this._send(errorReply(m.id, { code: Codes.BAD_REQUEST, message: m.message }));
        else this._send(mkEvent('protocol.error', { code: Codes.BAD_REQUEST, message: m.message }));
        return;
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return; // late (past its deadline) or not ours: dropped
        this.pending.delete(m.id);
        this.clock.clearTimeout(p.timer);
        if (m.error) p.reject(new TabmuxError(m.error.code, m.error.message, m.error.data));
        else p.resolve(m.result);
        return;
      }
      case 'event':
        if (this.state === 'challenge' && m.event === 'challenge' && this._onChallenge) {
          const go = this._onChallenge;
          this._onChallenge = null;
          go(m.params);
          return;
        }
        if (this.state !== 'open') return;
        try {
          this.onEvent(this, m);
        } catch (e) {
          this.log(this.label, null, `event ${m.event}: ${e.message}`);
        }
        return;
      case 'request':
        if (this.state !== 'open') {
          this._send(errorReply(m.id, { code: Codes.BAD_REQUEST, message: 'no request is valid before hello has succeeded' }));
          return;
        }
        if (m.method === 'ping') {
          this.reply(m.id, {});
          return;
        }
        this.lastActivity = this.clock.now();
        try {
          this.onRequest(this, m);
        } catch (e) {
          this.replyError(m.id, e);
        }
        return;
      default:
    }
  }

  /** Send a request to tabmux; rejects with TIMEOUT past its deadline, at once when the socket closes. */
  request(method, params = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WS_OPEN || this.state === 'closed') {
        reject(new TabmuxError(Codes.TIMEOUT, 'connection closed'));
        return;
      }
      const id = this.nextId++;
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new TabmuxError(Codes.TIMEOUT, `${method} got no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      if (!this._send(mkRequest(id, method, params))) {
        this.pending.delete(id);
        this.clock.clearTimeout(timer);
        reject(new TabmuxError(Codes.INTERNAL, `${method} could not be sent`));
      }
    });
  }

  /**
   * Reply to a request that arrived on this connection. Sent only if this
   * very connection is still open: a reply is never delivered elsewhere.
   * Returns false when dropped.
   */
  reply(id, result) {
    if (!this.isOpen()) return false;
    const enc = encodeFrame(mkReply(id, result), { maxBytes: this.maxOutBytes });
    if (!enc.ok) {
      this.log(this.label, null, `reply ${id} too large (${enc.bytes} bytes)`);
      return this._send(tooLarge(id, enc.bytes, this.maxOutBytes));
    }
    return this._sendText(enc.text);
  }

  replyError(id, err) {
    if (!this.isOpen()) return false;
    return this._send(errorReply(id, toWireError(err)));
  }

  /** Send an event; too-large events are dropped (and logged), never sent. */
  emit(name, params) {
    if (!this.isOpen()) return false;
    return this._send(mkEvent(name, params));
  }

  _send(msg) {
    let enc;
    try {
      enc = encodeFrame(msg, { maxBytes: this.maxOutBytes });
    } catch (e) {
      this.log(this.label, null, `cannot encode: ${e.message}`);
      return false;
    }
    if (!enc.ok) {
      this.log(this.label, null, `frame of ${enc.bytes} bytes dropped (limit ${this.maxOutBytes})`);
      return false;
    }
    return this._sendText(enc.text);
  }

  _sendText(text) {
    if (!this.ws || this.ws.readyState !== WS_OPEN) return false;
    try {
      this.ws.send(text);
      this.stats.sent++;
      this.stats.bytesOut += text.length;
      return true;
    } catch (e) {
      this.log(this.label, null, `send failed: ${e.message}`);
      return false;
    }
  }

  close(code = 1000, reason = '') {
    if (this.state === 'closed') return;
    const ws = this.ws;
    try {
      if (ws && ws.readyState <= WS_OPEN) ws.close(code, reason);
    } catch {
      /* ignore */
    }
    this._closed(code, reason);
  }

  _closed(code, reason) {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    for (const [kind, t] of this._timers) (kind === 'i' ? this.clock.clearInterval(t) : this.clock.clearTimeout(t));
    this._timers = [];
    for (const p of this.pending.values()) {
      this.clock.clearTimeout(p.timer);
      p.reject(new TabmuxError(Codes.TIMEOUT, `connection closed before ${p.method} was answered`));
    }
    this.pending.clear();
    if (this.ws) {
      this.ws.onopen = this.ws.onmessage = this.ws.onerror = this.ws.onclose = null;
    }
    // 4002: tabmux refused our proof; 4001: another protocol.
    if (this._settleOpen) this._settleOpen({ ok: false, foreign: code === 4002, mismatch: code === 4001, message: `closed (${code || 'no code'}${reason ? ` ${reason}` : ''})` });
    try {
      this.onClose(this, { code, reason, wasOpen, livedMs: this.openedAt != null ? this.clock.now() - this.openedAt : 0 });
    } catch (e) {
      this.log(this.label, null, `onClose: ${e.message}`);
    }
  }
}
