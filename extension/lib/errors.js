// Stable error codes of the wire protocol (docs/PROTOCOL.md) and the error type
// every module throws. `message` is for people; `code` and `data` are for programs.

import { PROTOCOL } from './protocol.js';

/** The wire codes by name (from protocol.js): `Codes.TAB_BUSY === 'TAB_BUSY'`. */
export const Codes = Object.freeze(Object.fromEntries(Object.keys(PROTOCOL.errors).map((c) => [c, c])));

export class TabmuxError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = 'TabmuxError';
    this.code = code;
    if (data !== undefined) this.data = data;
  }

  toWire() {
    const e = { code: this.code, message: this.message };
    if (this.data !== undefined) e.data = this.data;
    return e;
  }
}

export function tabmuxError(code, message, data) {
  return new TabmuxError(code, message, data);
}

/** Any thrown value → a wire error object. Unknown errors are INTERNAL. */
export function toWireError(err, where = 'extension') {
  if (err instanceof TabmuxError) return err.toWire();
  if (err && typeof err.code === 'string' && Codes[err.code] && typeof err.message === 'string') {
    const e = { code: err.code, message: err.message };
    if (err.data !== undefined) e.data = err.data;
    return e;
  }
  const msg = err && err.message ? err.message : String(err);
  return { code: Codes.INTERNAL, message: `${where}: ${msg}` };
}
