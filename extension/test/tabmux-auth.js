// The tabmux side of the authenticated hello, for tests that play tabmux (the fake
// peers, mock-tabmux.js): the same bytes as src/auth.rs, with node:crypto.

import crypto from 'node:crypto';

export const TEST_SECRET = '07'.repeat(32);
export const LABEL_EXTENSION = 'tabmux-v1 extension proof';
export const LABEL_TABMUX = 'tabmux-v1 tabmux proof';

function message(label, parts) {
  const chunks = [Buffer.from(label), Buffer.from([0])];
  for (const p of parts) {
    const b = Buffer.from(String(p));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    chunks.push(len, b);
  }
  return Buffer.concat(chunks);
}

export function proof(secret, label, parts) {
  return crypto.createHmac('sha256', Buffer.from(secret, 'hex')).update(message(label, parts)).digest('hex');
}

export const newNonce = () => crypto.randomBytes(32).toString('hex');

/** The challenge event tabmux sends first. */
export const challenge = (nonce, protocol = 1) => ({ event: 'challenge', params: { protocol, nonce } });

/** Whether a hello's params prove `secret` for this challenge and port. */
export function helloValid(params, secret, tabmuxNonce, port) {
  if (!params || typeof params.nonce !== 'string' || typeof params.proof !== 'string') return false;
  return proof(secret, LABEL_EXTENSION, [tabmuxNonce, params.nonce, String(port)]) === params.proof;
}

/** tabmux's proof for its hello reply. */
export function tabmuxProof(secret, tabmuxNonce, extNonce, port, instanceId) {
  return proof(secret, LABEL_TABMUX, [tabmuxNonce, extNonce, String(port), instanceId]);
}
