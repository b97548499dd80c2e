// The secret this copy of the extension shares with its tabmux (config.json, written
// by `tabmux extension install` or for tabmux's shared browser; or, for a copy without
// config.json such as the store's, the pairing code from `tabmux extension pair`,
// kept in chrome.storage.local), and the proofs made
// with it: HMAC-SHA256 over a label and length-prefixed parts, the same bytes as
// tabmux's src/auth.rs. Each direction has its own label, so a proof can never be
// sent back as the other side's.
//
// SHA-256 is computed here, synchronously (FIPS 180-4; checked against node:crypto
// and RFC 4231 in test/auth.test.js), so the handshake has no asynchronous step
// whose timing depends on a thread pool. Nonces come from crypto.getRandomValues.

export const LABEL_EXTENSION = 'tabmux-v1 extension proof';
export const LABEL_TABMUX = 'tabmux-v1 tabmux proof';
const HEX64 = /^[0-9a-f]{64}$/;

/** Whether `s` is 64 lowercase hex digits (a secret or a nonce). */
export function isHex64(s) {
  return typeof s === 'string' && HEX64.test(s);
}

/** Where a pairing code (`tabmux extension pair`) is kept: chrome.storage.local. */
export const PAIRING_KEY = 'pairedSecret';

/**
 * The secret in a pairing code as printed by `tabmux extension pair`: 64 hex digits,
 * any case, with spaces, dashes and line breaks ignored. Returns the 64 lowercase hex
 * digits, or throws an Error whose message says what is wrong and what to do.
 */
export function parsePairingCode(code) {
  if (typeof code !== 'string') throw new Error('no pairing code given: run `tabmux extension pair` and paste the code it prints');
  const digits = code.replace(/[\s-]/g, '').toLowerCase();
  if (!digits) throw new Error('no pairing code given: run `tabmux extension pair` and paste the code it prints');
  if (/[^0-9a-f]/.test(digits)) throw new Error('a pairing code has only the digits 0-9 and letters a-f: copy it again from `tabmux extension pair`');
  if (digits.length !== 64) throw new Error(`a pairing code has 64 hex digits, this one has ${digits.length}: copy the whole code from \`tabmux extension pair\``);
  return digits;
}

function hexToBytes(hex) {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

function bytesToHex(bytes) {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** label, a zero byte, then each part as a 4-byte big-endian length and its UTF-8 bytes. */
export function message(label, parts) {
  const enc = new TextEncoder();
  const chunks = [enc.encode(label), new Uint8Array([0])];
  for (const p of parts) {
    const bytes = enc.encode(String(p));
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, bytes.length);
    chunks.push(len, bytes);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 of a byte array. */
export function sha256(data) {
  const bitLen = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 2 ** 32));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]);
  return out;
}

/** HMAC-SHA256 (RFC 2104). */
export function hmacSha256(key, msg) {
  const k = new Uint8Array(64);
  k.set(key.length > 64 ? sha256(key) : key);
  const inner = new Uint8Array(64 + msg.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = k[i] ^ 0x36;
    outer[i] = k[i] ^ 0x5c;
  }
  inner.set(msg, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

/** HMAC-SHA256 of message(label, parts) under the hex secret, as hex. */
export function proof(secretHex, label, parts) {
  return bytesToHex(hmacSha256(hexToBytes(secretHex), message(label, parts)));
}

/** A fresh nonce: 32 random bytes as hex. */
export function nonce() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** String equality whose time depends only on the lengths. */
export function sameProof(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

/** The extension's proof: over tabmux's nonce, its own nonce and the port. */
export function extensionProof(secret, tabmuxNonce, extNonce, port) {
  return proof(secret, LABEL_EXTENSION, [tabmuxNonce, extNonce, String(port)]);
}

/** tabmux's proof: over both nonces, the port and its instance id. */
export function tabmuxProof(secret, tabmuxNonce, extNonce, port, instanceId) {
  return proof(secret, LABEL_TABMUX, [tabmuxNonce, extNonce, String(port), instanceId]);
}
