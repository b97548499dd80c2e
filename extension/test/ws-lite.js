// A small RFC 6455 WebSocket (text frames, ping/pong, close, fragmentation)
// for the dev tools under test/: the mock tabmux (server side) and the DevTools
// client that drives Chromium (client side). Node built-ins only.

import crypto from 'node:crypto';
import http from 'node:http';
import { EventEmitter } from 'node:events';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export class WsPeer extends EventEmitter {
  constructor(socket, { mask }) {
    super();
    this.socket = socket;
    this.mask = mask;
    this.buf = Buffer.alloc(0);
    this.frag = null;
    this.open = true;
    socket.setNoDelay(true);
    socket.on('data', (d) => this._data(d));
    socket.on('close', () => this._gone(1006));
    socket.on('error', () => this._gone(1006));
  }

  _gone(code, reason = '') {
    if (!this.open) return;
    this.open = false;
    this.emit('close', code, reason);
  }

  _data(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const maskKey = masked ? this.buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let payload = Buffer.from(this.buf.subarray(off, off + len));
      this.buf = this.buf.subarray(off + len);
      if (maskKey) for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i & 3];
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      if (op === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.subarray(2).toString();
        if (this.open) this._frame(0x8, payload.subarray(0, 2));
        this.socket.end();
        this._gone(code, reason);
        return;
      }
      if (op === 0x9) {
        this._frame(0xa, payload);
        continue;
      }
      if (op === 0xa) continue;
      if (op === 0x1 || op === 0x2) {
        if (fin) this._message(op, payload);
        else this.frag = { op, parts: [payload] };
      } else if (op === 0x0 && this.frag) {
        this.frag.parts.push(payload);
        if (fin) {
          const { op: o, parts } = this.frag;
          this.frag = null;
          this._message(o, Buffer.concat(parts));
        }
      }
    }
  }

  _message(op, payload) {
    if (op === 0x1) this.emit('message', payload.toString('utf8'));
    else this.emit('binary', payload);
  }

  _frame(op, payload) {
    const len = payload.length;
    let head;
    if (len < 126) head = Buffer.from([0x80 | op, (this.mask ? 0x80 : 0) | len]);
    else if (len < 65536) {
      head = Buffer.alloc(4);
      head[0] = 0x80 | op;
      head[1] = (this.mask ? 0x80 : 0) | 126;
      head.writeUInt16BE(len, 2);
    } else {
      head = Buffer.alloc(10);
      head[0] = 0x80 | op;
      head[1] = (this.mask ? 0x80 : 0) | 127;
      head.writeBigUInt64BE(BigInt(len), 2);
    }
    if (this.mask) {
      const key = crypto.randomBytes(4);
      const body = Buffer.from(payload);
      for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
      this.socket.write(Buffer.concat([head, key, body]));
    } else {
      this.socket.write(Buffer.concat([head, payload]));
    }
  }

  send(text) {
    if (!this.open) return false;
    this._frame(0x1, Buffer.from(text, 'utf8'));
    return true;
  }

  sendBinary(buf) {
    if (this.open) this._frame(0x2, buf);
  }

  close(code = 1000, reason = '') {
    if (!this.open) return;
    const p = Buffer.alloc(2 + Buffer.byteLength(reason));
    p.writeUInt16BE(code, 0);
    p.write(reason, 2);
    this._frame(0x8, p);
    this.open = false;
    setTimeout(() => this.socket.destroy(), 100);
    this.emit('close', code, reason);
  }

  /** Drop the TCP connection without a close frame (a crash). */
  destroy() {
    this.socket.destroy();
    this._gone(1006);
  }
}

/** Complete a server-side upgrade; returns the peer, or null after refusing. */
export function acceptUpgrade(req, socket, { allowOrigin } = {}) {
  const key = req.headers['sec-websocket-key'];
  if (!key || (allowOrigin && req.headers.origin !== allowOrigin)) {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return null;
  }
  const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  return new WsPeer(socket, { mask: false });
}

/** Client side: connect to ws://host:port/path. */
export function connectWs(url, { headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const key = crypto.randomBytes(16).toString('base64');
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key, ...headers },
    });
    req.on('upgrade', (res, socket, head) => {
      const peer = new WsPeer(socket, { mask: true });
      if (head && head.length) peer._data(head);
      resolve(peer);
    });
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}
