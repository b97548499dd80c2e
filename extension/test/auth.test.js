import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sha256, hmacSha256, extensionProof, tabmuxProof, message, isHex64, sameProof, nonce } from '../lib/auth.js';
import { proof as nodeProof, LABEL_EXTENSION, LABEL_TABMUX } from './tabmux-auth.js';

const hex = (b) => Buffer.from(b).toString('hex');

test('SHA-256 and HMAC match node:crypto on many lengths', () => {
  for (let n = 0; n < 300; n += 7) {
    const data = crypto.randomBytes(n);
    assert.equal(hex(sha256(data)), crypto.createHash('sha256').update(data).digest('hex'), `length ${n}`);
    const key = crypto.randomBytes((n * 3) % 150);
    assert.equal(hex(hmacSha256(key, data)), crypto.createHmac('sha256', key).update(data).digest('hex'), `length ${n}`);
  }
});

test('HMAC matches RFC 4231 test case 2', () => {
  const mac = hmacSha256(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'));
  assert.equal(hex(mac), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

test('proofs are the bytes tabmux computes (src/auth.rs cross-check)', () => {
  const s = '07'.repeat(32);
  assert.equal(extensionProof(s, 'aa', 'bb', 9000), 'd63d24bbbebaa2017c108fdf601dccfa0100c17f8ed22c256dd78ef8e4e3b2f2');
  assert.equal(extensionProof(s, 'aa', 'bb', 9000), nodeProof(s, LABEL_EXTENSION, ['aa', 'bb', '9000']));
  assert.equal(tabmuxProof(s, 'aa', 'bb', 9000, 'I'), nodeProof(s, LABEL_TABMUX, ['aa', 'bb', '9000', 'I']));
  assert.notEqual(extensionProof(s, 'aa', 'bb', 9000), tabmuxProof(s, 'aa', 'bb', 9000, ''), 'labels differ');
  assert.notDeepEqual(message('l', ['ab', 'c']), message('l', ['a', 'bc']));
});

test('nonces, secrets and comparisons', () => {
  assert.ok(isHex64(nonce()));
  assert.notEqual(nonce(), nonce());
  assert.ok(!isHex64('AB'.repeat(32)));
  assert.ok(!isHex64(undefined));
  assert.ok(sameProof('abc', 'abc'));
  assert.ok(!sameProof('abc', 'abd'));
  assert.ok(!sameProof('abc', 'ab'));
  assert.ok(!sameProof(undefined, undefined));
});
