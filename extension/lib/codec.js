// Frames of the wire protocol: one JSON object per text frame.
// parseFrame never throws; encodeFrame enforces the outgoing size limit.

import { Codes } from './errors.js';
import { PROTOCOL } from './protocol.js';

export const PROTOCOL_VERSION = PROTOCOL.version;
/** Largest frame the extension sends (bytes of UTF-8). */
export const MAX_OUT_BYTES = PROTOCOL.maxBytes.toTabmux;
/** Largest frame the extension accepts from tabmux. */
export const MAX_IN_BYTES = PROTOCOL.maxBytes.toExtension;

/** UTF-8 length of a JS string without allocating the encoded bytes. */
export function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 4; i++; } else n += 3;
    } else n += 3;
  }
  return n;
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isValidId(id) {
  return Number.isSafeInteger(id) && id > 0;
}

/**
 * Parse one incoming frame.
 * Returns one of:
 *   {kind:'request', id, method, params, trace?}
 *   {kind:'reply', id, result} | {kind:'reply', id, error}
 *   {kind:'event', event, params}
 *   {kind:'invalid', id?, message}   (id present when one could be read)
 */
export function parseFrame(data, { maxBytes = MAX_IN_BYTES } = {}) {
  if (typeof data !== 'string') {
    return { kind: 'invalid', message: 'binary frames are not accepted; send text frames with one JSON object' };
  }
  if (data.length > maxBytes || (data.length * 3 > maxBytes && utf8Length(data) > maxBytes)) {
    return { kind: 'invalid', message: `frame of ${utf8Length(data)} bytes exceeds the limit of ${maxBytes} bytes` };
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch (e) {
    return { kind: 'invalid', message: `frame is not valid JSON: ${e.message}` };
  }
  if (!isPlainObject(msg)) return { kind: 'invalid', message: 'frame is not a JSON object' };

  const hasId = Object.prototype.hasOwnProperty.call(msg, 'id');
  const id = hasId && isValidId(msg.id) ? msg.id : undefined;
  if (hasId && id === undefined) return { kind: 'invalid', message: 'id must be a positive integer' };

  if (typeof msg.method === 'string') {
    if (id === undefined) return { kind: 'invalid', message: 'request without id' };
    if (msg.params !== undefined && !isPlainObject(msg.params)) {
      return { kind: 'invalid', id, message: 'params must be an object' };
    }
    const out = { kind: 'request', id, method: msg.method, params: msg.params ?? {} };
    if (typeof msg.trace === 'string' && msg.trace.length <= 200) out.trace = msg.trace;
    return out;
  }
  if (id !== undefined && ('result' in msg || 'error' in msg)) {
    if ('error' in msg) {
      const e = msg.error;
      if (!isPlainObject(e) || typeof e.code !== 'string') return { kind: 'invalid', id, message: 'error must be an object with a string code' };
      return { kind: 'reply', id, error: { code: e.code, message: typeof e.message === 'string' ? e.message : '', data: e.data } };
    }
    return { kind: 'reply', id, result: msg.result };
  }
  if (typeof msg.event === 'string') {
    if (msg.params !== undefined && !isPlainObject(msg.params)) return { kind: 'invalid', message: 'event params must be an object' };
    return { kind: 'event', event: msg.event, params: msg.params ?? {} };
  }
  return { kind: 'invalid', id, message: 'frame is neither a request, a reply nor an event' };
}

/**
 * Encode a message; returns {ok:true, text, bytes} or {ok:false, bytes}
 * when the frame would exceed maxBytes. Never throws on size; throws only on
 * values JSON cannot represent (cycles, BigInt), which are bugs.
 */
export function encodeFrame(msg, { maxBytes = MAX_OUT_BYTES } = {}) {
  const text = JSON.stringify(msg);
  // Cheap bound first: UTF-8 is at most 3 bytes per UTF-16 unit.
  if (text.length * 3 <= maxBytes) return { ok: true, text, bytes: undefined };
  const bytes = utf8Length(text);
  if (bytes > maxBytes) return { ok: false, bytes };
  return { ok: true, text, bytes };
}

export function request(id, method, params = {}, trace) {
  const m = { id, method, params };
  if (trace) m.trace = trace;
  return m;
}
export function reply(id, result) { return { id, result: result ?? {} }; }
export function errorReply(id, error) { return { id, error }; }
export function event(name, params = {}) { return { event: name, params }; }

/** Reply to a too-large result. */
export function tooLarge(id, bytes, maxBytes = MAX_OUT_BYTES) {
  return errorReply(id, {
    code: Codes.TOO_LARGE,
    message: `the reply would be ${bytes} bytes, over the frame limit of ${maxBytes} bytes`,
    data: { bytes, limit: maxBytes },
  });
}
