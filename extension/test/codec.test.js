import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFrame, encodeFrame, utf8Length, tooLarge } from '../lib/codec.js';

test('parses requests, replies and events', () => {
  assert.deepEqual(parseFrame('{"id":7,"method":"cdp","params":{"tabId":1},"trace":"t-1"}'), { kind: 'request', id: 7, method: 'cdp', params: { tabId: 1 }, trace: 't-1' });
  assert.deepEqual(parseFrame('{"id":7,"method":"ping"}'), { kind: 'request', id: 7, method: 'ping', params: {} });
  assert.deepEqual(parseFrame('{"id":3,"result":{"a":1}}'), { kind: 'reply', id: 3, result: { a: 1 } });
  const e = parseFrame('{"id":3,"error":{"code":"TAB_BUSY","message":"m","data":{"x":1}}}');
  assert.deepEqual(e, { kind: 'reply', id: 3, error: { code: 'TAB_BUSY', message: 'm', data: { x: 1 } } });
  assert.deepEqual(parseFrame('{"event":"instance.updated","params":{"name":"Cursor"}}'), { kind: 'event', event: 'instance.updated', params: { name: 'Cursor' } });
});

test('malformed frames are invalid, with the id when one could be read, never a throw', () => {
  const cases = [
    ['not json', undefined],
    ['[1,2]', undefined],
    ['null', undefined],
    ['"str"', undefined],
    ['{}', undefined],
    ['{"method":"x"}', undefined],
    ['{"id":-1,"method":"x"}', undefined],
    ['{"id":1.5,"method":"x"}', undefined],
    ['{"id":"7","method":"x"}', undefined],
    ['{"id":4,"method":"x","params":[1]}', 4],
    ['{"id":4,"error":"nope"}', 4],
    ['{"event":"x","params":5}', undefined],
    ['{"id":9}', 9],
  ];
  for (const [text, id] of cases) {
    const m = parseFrame(text);
    assert.equal(m.kind, 'invalid', text);
    assert.equal(m.id, id, text);
    assert.equal(typeof m.message, 'string');
  }
  assert.equal(parseFrame(new ArrayBuffer(4)).kind, 'invalid');
  assert.equal(parseFrame(undefined).kind, 'invalid');
});

test('incoming frames over the limit are refused', () => {
  const big = JSON.stringify({ id: 1, method: 'cdp', params: { s: 'x'.repeat(2000) } });
  assert.equal(parseFrame(big, { maxBytes: 1000 }).kind, 'invalid');
  assert.equal(parseFrame(big, { maxBytes: 10_000 }).kind, 'request');
});

test('utf8Length counts UTF-8 bytes', () => {
  for (const s of ['', 'abc', 'é', '€', '😀', 'a😀é€', '\ud800x']) {
    assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
  }
});

test('encodeFrame refuses frames over the outgoing limit', () => {
  const ok = encodeFrame({ id: 1, result: { data: 'x'.repeat(100) } }, { maxBytes: 1000 });
  assert.equal(ok.ok, true);
  assert.equal(JSON.parse(ok.text).result.data.length, 100);
  const big = encodeFrame({ id: 1, result: { data: '€'.repeat(400) } }, { maxBytes: 1000 });
  assert.equal(big.ok, false);
  assert.ok(big.bytes > 1000);
  const t = tooLarge(1, big.bytes, 1000);
  assert.equal(t.error.code, 'TOO_LARGE');
  assert.equal(t.id, 1);
});
