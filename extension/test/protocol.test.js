// The facts shared with the Rust side (lib/protocol.js) and the golden frames both
// codecs must read alike (frames.golden.json; tests/protocol.rs runs the same cases).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PROTOCOL } from '../lib/protocol.js';
import { Codes } from '../lib/errors.js';
import { parseFrame, encodeFrame, MAX_IN_BYTES, MAX_OUT_BYTES, PROTOCOL_VERSION } from '../lib/codec.js';
import { DEFAULT_GRACE_MS, DEFAULT_LEASE_MS } from '../lib/locks.js';

const golden = JSON.parse(readFileSync(new URL('./frames.golden.json', import.meta.url), 'utf8'));

test('protocol.js holds strict JSON, as the Rust side reads it', () => {
  const src = readFileSync(new URL('../lib/protocol.js', import.meta.url), 'utf8');
  const start = src.indexOf('deepFreeze({') + 'deepFreeze('.length;
  const end = src.indexOf('\n});', start) + 2;
  assert.deepEqual(JSON.parse(src.slice(start, end)), PROTOCOL);
});

test('the modules take their constants from protocol.js', () => {
  assert.deepEqual(Object.keys(Codes).sort(), Object.keys(PROTOCOL.errors).sort());
  for (const [k, v] of Object.entries(Codes)) assert.equal(k, v);
  assert.equal(PROTOCOL_VERSION, PROTOCOL.version);
  assert.equal(MAX_IN_BYTES, PROTOCOL.maxBytes.toExtension);
  assert.equal(MAX_OUT_BYTES, PROTOCOL.maxBytes.toTabmux);
  assert.equal(DEFAULT_LEASE_MS, PROTOCOL.defaults.leaseMs);
  assert.equal(DEFAULT_GRACE_MS, PROTOCOL.defaults.graceMs);
});

/** parseFrame's result in the golden shape. */
function golden_shape(m) {
  if (m.kind === 'reply' && 'error' in m) {
    const error = { code: m.error.code, message: m.error.message };
    if (m.error.data !== undefined && m.error.data !== null) error.data = m.error.data;
    return { kind: 'error', id: m.id, error };
  }
  return m;
}

/** The frame in golden shape, as the extension would send it. */
function encode(f) {
  const { kind, ...rest } = f;
  if (kind === 'request') {
    const m = { id: f.id, method: f.method, params: f.params };
    if (f.trace) m.trace = f.trace;
    return m;
  }
  assert.ok(['reply', 'error', 'event'].includes(kind), kind);
  return rest;
}

test('golden frames decode and encode as the Rust codec does', () => {
  for (const c of golden.valid) {
    const got = golden_shape(parseFrame(c.text));
    assert.deepEqual(got, c.frame, c.text);
    const out = encodeFrame(encode(got));
    assert.ok(out.ok, c.text);
    assert.deepEqual(JSON.parse(out.text), c.wire ?? JSON.parse(c.text), c.text);
  }
  for (const text of golden.invalid) {
    assert.equal(parseFrame(text).kind, 'invalid', text);
  }
  for (const c of golden.differ) {
    assert.equal(parseFrame(c.text).kind === 'invalid' ? 'invalid' : 'valid', c.extension, c.text);
  }
});
