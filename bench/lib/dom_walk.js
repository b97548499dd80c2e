// The cost floor of an in-page snapshot collector: one walk over the document (open
// shadow roots included) that skips hidden elements, gives each element with an
// implicit or explicit role one line with a name, and each text node its text.
// Roles and names are deliberately simple (no full accessible-name computation), so a
// real collector costs at least this much. Returns [milliseconds, characters, lines].
(() => {
  const t0 = performance.now();
  const ROLE = {
    A: 'link', BUTTON: 'button', SELECT: 'combobox', TEXTAREA: 'textbox', SUMMARY: 'button',
    H1: 'heading', H2: 'heading', H3: 'heading', H4: 'heading', H5: 'heading', H6: 'heading',
    TABLE: 'table', TR: 'row', UL: 'list', OL: 'list', LI: 'listitem', NAV: 'navigation',
    MAIN: 'main', IMG: 'img',
  };
  const INPUT = {
    checkbox: 'checkbox', radio: 'radio', button: 'button', submit: 'button', reset: 'button',
    range: 'slider', number: 'spinbutton', search: 'searchbox', hidden: '',
  };
  const CONTAINER = new Set(['table', 'row', 'list', 'listitem', 'navigation', 'main']);
  const lines = [];
  let refs = 0;
  const text = (el) => (el.textContent || '').replace(/\s+/g, ' ').trim();
  function name(el) {
    const label = el.getAttribute('aria-label');
    if (label) return label;
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const root = el.getRootNode();
      return by.split(/\s+/).map((id) => (root.getElementById ? root.getElementById(id) : null))
        .filter(Boolean).map(text).join(' ');
    }
    if (el.labels && el.labels.length) return text(el.labels[0]);
    if (el.tagName === 'IMG') return el.alt || '';
    if (el.tagName === 'INPUT') return el.placeholder || el.title || '';
    return text(el) || el.title || '';
  }
  function walk(parent, depth) {
    const kids = parent.shadowRoot ? parent.shadowRoot.childNodes : parent.childNodes;
    for (const c of kids) {
      if (c.nodeType === 3) {
        const t = c.data.trim();
        if (t) lines.push(' '.repeat(depth) + t);
        continue;
      }
      if (c.nodeType !== 1) continue;
      const tag = c.tagName;
      if (tag === 'SCRIPT' || tag === 'STYLE' || tag === 'TEMPLATE' || tag === 'NOSCRIPT') continue;
      if (!c.checkVisibility()) continue;
      const role = c.getAttribute('role') || (tag === 'INPUT' ? (INPUT[c.type] ?? 'textbox') : ROLE[tag]);
      if (!role) {
        walk(c, depth);
      } else if (CONTAINER.has(role)) {
        lines.push(' '.repeat(depth) + role);
        walk(c, depth + 1);
      } else {
        refs += 1;
        lines.push(`${' '.repeat(depth)}${role} "${name(c)}" [e${refs}]`);
      }
    }
  }
  walk(document.body, 0);
  const out = lines.join('\n');
  return [performance.now() - t0, out.length, lines.length];
})()
