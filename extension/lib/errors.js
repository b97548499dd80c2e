// Stable error codes of the wire protocol (docs/PROTOCOL.md) and the error type
// every module throws. `message` is for people; `code` and `data` are for programs.

export const Codes = Object.freeze({
  BAD_REQUEST: 'BAD_REQUEST',
  PROTOCOL_MISMATCH: 'PROTOCOL_MISMATCH',
  UNAUTHORIZED: 'UNAUTHORIZED',
  TAB_BUSY: 'TAB_BUSY',
  TAB_CLOSED: 'TAB_CLOSED',
  NOT_FOUND: 'NOT_FOUND',
  LOCK_LOST: 'LOCK_LOST',
  NOT_HELD: 'NOT_HELD',
  NOT_ATTACHABLE: 'NOT_ATTACHABLE',
  CONSENT_DENIED: 'CONSENT_DENIED',
  CONSENT_TIMEOUT: 'CONSENT_TIMEOUT',
  TAKEN_BACK: 'TAKEN_BACK',
  FORBIDDEN_PAGE: 'FORBIDDEN_PAGE',
  FORBIDDEN_URL: 'FORBIDDEN_URL',
  FORBIDDEN_METHOD: 'FORBIDDEN_METHOD',
  CDP_ERROR: 'CDP_ERROR',
  TIMEOUT: 'TIMEOUT',
  TOO_LARGE: 'TOO_LARGE',
  INTERNAL: 'INTERNAL',
});

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
