// Tab group titles and colours for instances. Pure.

/** Chrome's tab group colours, in the order they are handed out. */
export const GROUP_COLORS = Object.freeze(['blue', 'red', 'yellow', 'green', 'pink', 'purple', 'cyan', 'orange', 'grey']);

export function cleanName(name) {
  const s = typeof name === 'string' ? name.replace(/\s+/g, ' ').trim() : '';
  return (s || 'tabmux').slice(0, 40);
}

/**
 * A label for `name` not among `taken` (labels of the other live instances):
 * "Cursor", then "Cursor 2", "Cursor 3"… (the smallest free number).
 */
export function uniqueLabel(name, taken) {
  const base = cleanName(name);
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) {
    const l = `${base} ${n}`;
    if (!used.has(l)) return l;
  }
}

/**
 * A colour distinct from `taken` (colours of the other live instances) while
 * one is left; otherwise the least used one (first in order on ties).
 * `preferred` (e.g. the colour an instance had before) wins when it is free.
 */
export function pickColor(taken, preferred) {
  const counts = new Map(GROUP_COLORS.map((c) => [c, 0]));
  for (const c of taken) if (counts.has(c)) counts.set(c, counts.get(c) + 1);
  if (preferred && counts.get(preferred) === 0) return preferred;
  let best = GROUP_COLORS[0];
  for (const c of GROUP_COLORS) if (counts.get(c) < counts.get(best)) best = c;
  return best;
}
