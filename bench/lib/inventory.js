// What a snapshot must contain, listed from the DOM of one document (iframes are listed
// from their own documents): every visible interactive element and every visible heading,
// each with the names an accessible-name computation could give it.
(() => {
  const WIDGET_ROLES = new Set([
    'button', 'link', 'checkbox', 'radio', 'switch', 'tab', 'menuitem', 'menuitemcheckbox',
    'menuitemradio', 'option', 'textbox', 'searchbox', 'combobox', 'slider', 'spinbutton',
    'listbox', 'treeitem', 'gridcell', 'scrollbar',
  ]);
  const INTERACTIVE = 'a[href], area[href], button, input:not([type=hidden]), select, textarea, summary, ' +
    '[contenteditable=""], [contenteditable=true], [role], [tabindex]';
  const HEADINGS = 'h1, h2, h3, h4, h5, h6, [role=heading]';
  const norm = (s) => (s || '').replace(/\s+/g, ' ').trim();

  function hiddenFromAT(el) {
    for (let e = el; e; e = e.parentElement) {
      if (e.getAttribute('aria-hidden') === 'true' || e.inert) return true;
    }
    return false;
  }
  function visible(el) {
    if (hiddenFromAT(el)) return false;
    if (!el.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true })) return false;
    // A closed <details> hides everything but its <summary>.
    for (let d = el.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) {
      if (!d.open && !(el.closest('summary') && el.closest('summary').parentElement === d)) return false;
    }
    return true;
  }
  // A label's own text, without the text of the control inside it (a <select>'s options).
  function labelText(label, el) {
    const c = label.cloneNode(true);
    for (const x of c.querySelectorAll('select, textarea, input, button')) x.remove();
    return c.innerText === undefined ? c.textContent : c.textContent;
  }
  // CSS generated content (e.g. rustdoc's "Collapse" on an open <summary>).
  function generated(el, which) {
    const c = getComputedStyle(el, which).content;
    return c && c !== 'none' && c !== 'normal' && c.startsWith('"') ? c.slice(1, -1) : '';
  }
  function names(el) {
    const out = [];
    const add = (s) => { s = norm(s).slice(0, 300); if (s && !out.includes(s)) out.push(s); };
    add(el.getAttribute('aria-label'));
    const lb = el.getAttribute('aria-labelledby');
    if (lb) add(lb.split(/\s+/).map((id) => { const t = document.getElementById(id); return t ? t.textContent : ''; }).join(' '));
    if (el.labels) for (const l of el.labels) add(labelText(l, el));
    if (el.tagName === 'INPUT' && /^(submit|button|reset)$/.test(el.type)) add(el.value);
    add(el.getAttribute('alt'));
    for (const img of el.querySelectorAll('img[alt]')) add(img.getAttribute('alt'));
    add(el.innerText);
    add(el.getAttribute('title'));
    add(el.getAttribute('placeholder'));
    const g = (generated(el, '::before') + ' ' + el.innerText + ' ' + generated(el, '::after'));
    add(g);
    for (const k of el.children) { add(generated(k, '::before') + generated(k, '::after')); }
    return out;
  }
  const items = [];
  for (const el of document.querySelectorAll(INTERACTIVE)) {
    const role = el.getAttribute('role');
    if (el.hasAttribute('role') && !el.matches('a[href], button, input, select, textarea, summary, [tabindex], [contenteditable]')) {
      if (!WIDGET_ROLES.has(role)) continue; // a landmark or structure role, not a control
    }
    if (el.matches('[tabindex]') && !el.matches('a[href], button, input, select, textarea, summary') &&
        !(role && WIDGET_ROLES.has(role)) && el.getAttribute('tabindex') === '-1') {
      // focusable by script only (e.g. a skip-link target): listed, marked as such
      if (!visible(el)) continue;
      items.push({ kind: 'interactive', tag: el.tagName.toLowerCase(), role: role || '', names: names(el), scriptFocus: true });
      continue;
    }
    if (!visible(el)) continue;
    items.push({ kind: 'interactive', tag: el.tagName.toLowerCase(), type: el.type || '', role: role || '', names: names(el) });
  }
  for (const el of document.querySelectorAll(HEADINGS)) {
    if (!visible(el)) continue;
    items.push({ kind: 'heading', tag: el.tagName.toLowerCase(), role: el.getAttribute('role') || '', names: names(el) });
  }
  return items; // each kind in document order
})()
