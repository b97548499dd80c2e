import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trimResult } from '../lib/trim.js';

test('the accessibility tree loses name sources and reasons, keeps what tabmux reads', () => {
  const node = {
    nodeId: '5',
    ignored: false,
    ignoredReasons: [{ name: 'x' }],
    chromeRole: { type: 'internalRole', value: 9 },
    role: { type: 'role', value: 'button' },
    name: { type: 'computedString', value: 'Save', sources: [{ type: 'contents', value: { type: 'computedString', value: 'Save' } }] },
    value: { type: 'string', value: 'v', sources: [] },
    properties: [{ name: 'focusable', value: { type: 'booleanOrUndefined', value: true } }],
    childIds: ['6'],
    backendDOMNodeId: 12,
  };
  const out = trimResult('Accessibility.getFullAXTree', { nodes: [node, null] });
  assert.deepEqual(out.nodes[0], {
    nodeId: '5',
    ignored: false,
    role: { type: 'role', value: 'button' },
    name: { type: 'computedString', value: 'Save' },
    value: { type: 'string', value: 'v' },
    properties: [{ name: 'focusable', value: { type: 'booleanOrUndefined', value: true } }],
    childIds: ['6'],
    backendDOMNodeId: 12,
  });
});

test('other answers pass untouched', () => {
  const r = { result: { value: 1 }, nodes: [{ chromeRole: 1 }] };
  assert.equal(trimResult('Runtime.evaluate', r), r);
  assert.deepEqual(r.nodes[0], { chromeRole: 1 });
  assert.equal(trimResult('Accessibility.getFullAXTree', null), null);
});
