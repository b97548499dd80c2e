import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueLabel, pickColor, cleanName, GROUP_COLORS } from '../lib/naming.js';

test('labels: the name, then "name 2", "name 3", smallest free number', () => {
  assert.equal(uniqueLabel('Cursor', []), 'Cursor');
  assert.equal(uniqueLabel('Cursor', ['Cursor']), 'Cursor 2');
  assert.equal(uniqueLabel('Cursor', ['Cursor', 'Cursor 2']), 'Cursor 3');
  assert.equal(uniqueLabel('Cursor', ['Cursor', 'Cursor 3']), 'Cursor 2');
  assert.equal(uniqueLabel('Cursor', ['Cursor 2']), 'Cursor');
  assert.equal(uniqueLabel('Claude Code', ['Cursor']), 'Claude Code');
});

test('names are cleaned and bounded', () => {
  assert.equal(cleanName('  Claude\n  Desktop '), 'Claude Desktop');
  assert.equal(cleanName(''), 'tabmux');
  assert.equal(cleanName(null), 'tabmux');
  assert.equal(cleanName('x'.repeat(100)).length, 40);
});

test('colours are distinct while possible, then least used', () => {
  const taken = [];
  for (let i = 0; i < GROUP_COLORS.length; i++) {
    const c = pickColor(taken);
    assert.ok(!taken.includes(c));
    taken.push(c);
  }
  assert.equal(pickColor(taken), GROUP_COLORS[0]);
  assert.equal(pickColor([...taken, GROUP_COLORS[0]]), GROUP_COLORS[1]);
  assert.equal(pickColor(['blue'], 'green'), 'green');
  assert.equal(pickColor(['green'], 'green'), 'blue');
});
