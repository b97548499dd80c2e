// The in-page snapshot collector. Runs in an isolated world of one frame (the page's own
// scripts cannot see or change it) and answers with the frame's content as compact nodes
// in document order, as JSON text:
//
//   [gen, url, items]        the document changed (or a full answer was asked for)
//   [gen, url, items, hosts] … and these custom elements (ids) showed no shadow root
//   [gen]                    nothing changed since generation `gen` (opts.gen)
//
// An item is a string (a text run; "\n" is a line break) or an array
//   [size, id, role, name, flags, value, level, url]
// (trailing parts left out when empty; `url` only when asked for): `size` is the number of items in the element's
// subtree, `id` the element's id in this document (kept in a WeakMap, so the same element
// keeps its id), `role` uses the accessibility tree's words, `flags` the bits of
// `snapshot::flags` (src/snapshot/mod.rs).
//
// Called as `(SCRIPT)(opts)` with opts {gen, viewport, track, urls} (collect), {op: "id", el} (the id
// of an element, made on first sight) or {op: "el", id} (the element of an id, or null
// once it left the document). Closed shadow roots come in through the handle this
// leaves in the world (`globalThis.__tabmuxSnapshot.adopt(root)`, src/browser/snap.rs).
(opts) => {
  const KEY = '__tabmuxSnapshot'; // src/browser/snap.rs reaches it as HANDLE
  const T = globalThis[KEY] || (globalThis[KEY] = (() => {
    const F = {
      IGNORED: 1, FOCUSABLE: 2, EDITABLE: 4, CHECKED: 8, MIXED: 16, PRESSED: 32,
      PRESSED_MIXED: 64, SELECTED: 128, EXPANDED: 256, COLLAPSED: 512, DISABLED: 1024,
      REQUIRED: 2048, READONLY: 4096, INVALID: 8192, FOCUSED: 16384, MODAL: 32768,
      MULTISELECTABLE: 65536, BUSY: 131072, CLICKABLE: 262144, IN_VIEW: 524288,
    };
    const ids = new WeakMap();
    const byId = new Map();
    let nextId = 1;
    let gen = 1;
    const bump = () => { gen += 1; };
    const observer = new MutationObserver(bump);
    const observed = new WeakSet();
    const observe = (root) => {
      if (observed.has(root)) return;
      observed.add(root);
      observer.observe(root, { subtree: true, childList: true, attributes: true, characterData: true });
    };
    observe(document);
    // Events that change what a snapshot shows without changing the DOM. (Scrolling and
    // following an in-page link do not: they leave the snapshot as it was.)
    for (const t of ['input', 'change', 'toggle', 'close', 'resize', 'fullscreenchange']) {
      window.addEventListener(t, bump, true);
    }
    // State a walk saw, to tell whether a script changed it without an event since.
    let controls = [];
    let active = null;
    let hoverRules = false;
    let hovered = [];

    // Closed shadow roots: the page's scripts keep them to themselves, but tabmux finds them
    // through CDP and hands them in (adopt). A walk reports the custom elements it
    // shows without a shadow root (`hosts`), each once, for tabmux to look for one; a
    // document whose first MAX_HOSTS such elements had none (custom tags used as plain
    // containers) is not asked about again.
    const closedRoots = new WeakMap();
    const asked = new WeakSet();
    let askedCount = 0;
    let adopted = 0;
    let hosts = [];
    const MAX_HOSTS = 64;
    const rootOf = (el) => el.shadowRoot || closedRoots.get(el) || null;
    function adopt(root) {
      if (!(root instanceof ShadowRoot) || !root.host) return false;
      closedRoots.set(root.host, root);
      adopted++;
      bump();
      return true;
    }

    function idOf(el) {
      let id = ids.get(el);
      if (id === undefined) {
        id = nextId++;
        ids.set(el, id);
        byId.set(id, new WeakRef(el));
      }
      return id;
    }
    function elOf(id) {
      const r = byId.get(id);
      const el = r && r.deref();
      if (!el) byId.delete(id);
      return el && el.isConnected ? el : null;
    }
    // The focused field, where typed keys go. (The focus of a clicked link or button is
    // not shown: it would make every click a change.)
    const NOT_TYPED = new Set(['checkbox', 'radio', 'button', 'submit', 'reset', 'image', 'file',
      'range', 'color']);
    function deepActive() {
      let a = document.activeElement;
      for (let r; a && (r = rootOf(a)) && r.activeElement;) a = r.activeElement;
      if (!a || a === document.body || a === document.documentElement) return null;
      const t = a.localName;
      const field = a.isContentEditable || t === 'textarea' || t === 'select'
        || (t === 'input' && !NOT_TYPED.has(a.type))
        || /^(textbox|searchbox|combobox|spinbutton)$/.test(a.getAttribute('role') || '');
      return field ? a : null;
    }
    const controlState = (el) => (el.type === 'checkbox' || el.type === 'radio')
      ? el.checked + '' + el.indeterminate : el.value + '|' + (el.selectedIndex === undefined ? '' : el.selectedIndex);
    function hoverChain() {
      return hoverRules ? Array.from(document.querySelectorAll(':hover')) : [];
    }
    function findHoverRules() {
      // Only pages whose :hover rules show or hide things need the hovered chain watched.
      try {
        for (const sheet of document.styleSheets) {
          let rules;
          try { rules = sheet.cssRules; } catch (e) { return true; }
          for (const r of rules) {
            const sel = r.selectorText;
            if (sel && sel.includes(':hover') && /display|visibility|opacity|height|content/.test(r.style.cssText)) {
              return true;
            }
          }
        }
      } catch (e) { return true; }
      return false;
    }
    function unchanged() {
      if (deepActive() !== active) return false;
      for (const [el, s] of controls) {
        if (!el.isConnected || controlState(el) !== s) return false;
      }
      const h = hoverChain();
      return h.length === hovered.length && h.every((x, i) => x === hovered[i]);
    }

    // ---- roles ----
    const INPUT_ROLE = {
      button: 'button', submit: 'button', reset: 'button', image: 'button', file: 'button',
      checkbox: 'checkbox', radio: 'radio', range: 'slider', number: 'spinbutton',
      search: 'searchbox', date: 'Date', 'datetime-local': 'DateTime', time: 'InputTime',
      month: 'Date', week: 'Date', color: 'ColorWell', hidden: '',
    };
    const SIMPLE = {
      article: 'article', aside: 'complementary', button: 'button', dd: 'definition',
      details: 'Details', dialog: 'dialog', dl: 'DescriptionList', dt: 'term', fieldset: 'group',
      figure: 'figure', figcaption: 'Figcaption', form: 'form', h1: 'heading', h2: 'heading',
      h3: 'heading', h4: 'heading', h5: 'heading', h6: 'heading', hr: 'separator', iframe: 'Iframe',
      frame: 'Iframe', li: 'listitem', main: 'main', menu: 'list', meter: 'meter', nav: 'navigation',
      ol: 'list', ul: 'list', optgroup: 'group', option: 'option', output: 'status', p: 'paragraph',
      progress: 'progressbar', summary: 'DisclosureTriangle', table: 'table', tbody: 'rowgroup',
      thead: 'rowgroup', tfoot: 'rowgroup', tr: 'row', textarea: 'textbox', caption: 'caption',
      legend: 'Legend', label: 'LabelText', blockquote: 'blockquote', code: 'code', strong: 'strong',
      em: 'emphasis', mark: 'mark', time: 'time', abbr: 'Abbr', sub: 'subscript',
      sup: 'superscript', ins: 'insertion', del: 'deletion', canvas: 'Canvas', video: 'Video',
      audio: 'Audio', search: 'search', math: 'math', pre: 'Pre', address: 'group',
    };
    const ARIA_ROLES = new Set(('alert alertdialog application article banner blockquote button caption cell ' +
      'checkbox code columnheader combobox complementary contentinfo definition deletion dialog directory ' +
      'document emphasis feed figure form generic grid gridcell group heading img image insertion link list ' +
      'listbox listitem log main mark marquee math menu menubar menuitem menuitemcheckbox menuitemradio meter ' +
      'navigation none note option paragraph presentation progressbar radio radiogroup region row rowgroup ' +
      'rowheader scrollbar search searchbox separator slider spinbutton status strong subscript superscript ' +
      'switch tab table tablist tabpanel term textbox time timer toolbar tooltip tree treegrid treeitem').split(' '));
    const LANDMARK_SCOPE = new Set(['article', 'aside', 'main', 'nav', 'section']);
    const WIDGET = new Set(['button', 'link', 'textbox', 'searchbox', 'checkbox', 'radio', 'combobox',
      'listbox', 'option', 'slider', 'spinbutton', 'switch', 'tab', 'menuitem', 'menuitemcheckbox',
      'menuitemradio', 'treeitem', 'DisclosureTriangle', 'Date', 'DateTime', 'InputTime', 'ColorWell',
      'scrollbar']);
    const FROM_CONTENT = new Set(['button', 'link', 'heading', 'tab', 'menuitem', 'menuitemcheckbox',
      'menuitemradio', 'option', 'treeitem', 'checkbox', 'radio', 'switch', 'DisclosureTriangle',
      'tooltip', 'row', 'cell', 'gridcell', 'columnheader', 'rowheader']);
    const NAMED_ALWAYS = new Set(['image', 'img', 'Iframe', 'table', 'grid', 'treegrid', 'group', 'figure',
      'dialog', 'alertdialog', 'region', 'form', 'radiogroup', 'tablist', 'tabpanel', 'menu', 'menubar',
      'toolbar', 'tree', 'list', 'navigation', 'main', 'complementary', 'banner', 'contentinfo', 'search',
      'article', 'meter', 'progressbar', 'Video', 'Audio', 'Canvas', 'math', 'status', 'alert', 'log',
      'document', 'note', 'graphics-document', 'Details']);
    // Tags whose name comes from elsewhere than their content.
    const NAME_TAGS = new Set(['input', 'select', 'textarea', 'meter', 'progress', 'output', 'img',
      'area', 'fieldset', 'table', 'svg', 'optgroup', 'option']);
    // Roles a name reads a value of.
    const VALUED = new Set(['textbox', 'searchbox', 'spinbutton', 'slider', 'combobox', 'listbox']);
    const CONTENT_SHOWN = new Set(['row', 'cell', 'gridcell', 'columnheader', 'rowheader']);
    // Roles whose content does not go into an ancestor's name.
    const CONTAINERS = new Set(['group', 'tree', 'treegrid', 'list', 'listbox', 'menu', 'menubar',
      'grid', 'table', 'tablist', 'toolbar', 'dialog', 'alertdialog', 'radiogroup', 'region',
      'navigation']);
    const SKIP = new Set(['script', 'style', 'template', 'noscript', 'head', 'meta', 'link', 'title',
      'base', 'param', 'source', 'track', 'datalist']);
    const INLINE_ROLES = new Set(['code', 'strong', 'emphasis', 'mark', 'time', 'Abbr', 'subscript',
      'superscript', 'insertion', 'deletion']);
    const LEAF_TAGS = new Set(['iframe', 'frame', 'input', 'textarea', 'select', 'img', 'video',
      'audio', 'canvas', 'object', 'embed', 'progress', 'meter']);
    // Elements whose part of an ancestor's name is not their text.
    const OWN_NAME_TAGS = new Set([...NAME_TAGS, ...LEAF_TAGS, 'br', 'wbr', 'details']);
    const INLINE_HANDLERS = new Set(['onclick', 'ondblclick', 'onmousedown', 'onmouseup',
      'onpointerdown', 'onpointerup', 'ontouchstart', 'ondragstart', 'ondrop', 'onkeydown', 'onkeyup',
      'onchange', 'oninput', 'oncontextmenu']);
    // What an element's attribute names say: STATEFUL (an attribute that gives a state) and
    // HANDLER (an inline handler, or draggable=true). From the names alone: reading
    // `attributes` would make the page create an Attr node for each one, and a selector
    // pass over the document costs more than the walk's own look.
    const STATE_ATTRS = new Set(['aria-checked', 'aria-pressed', 'aria-selected', 'aria-expanded',
      'aria-disabled', 'aria-required', 'aria-readonly', 'aria-invalid', 'aria-modal',
      'aria-multiselectable', 'aria-busy', 'contenteditable', 'disabled']);
    const STATEFUL = 1;
    const HANDLER = 2;
    // A name may read more than the element's text: its title (when the text is empty),
    // the elements aria-labelledby names.
    const TITLED = 4;
    const LABELLEDBY = 8;
    function attrKinds(el) {
      if (!el.hasAttributes()) return 0;
      const names = el.getAttributeNames();
      if (names.length === 1 && names[0] === 'class') return 0;
      let k = 0;
      for (let i = 0; i < names.length; i++) {
        const n = names[i];
        if (STATE_ATTRS.has(n)) k |= STATEFUL;
        else if (n === 'title') k |= TITLED;
        else if (n === 'aria-labelledby') k |= LABELLEDBY;
        else if (INLINE_HANDLERS.has(n) || (n === 'draggable' && el.getAttribute(n) === 'true')) k |= HANDLER;
      }
      return k;
    }

    function explicitRole(el) {
      const r = el.getAttribute('role');
      if (!r) return '';
      for (const t of r.trim().split(/\s+/)) {
        const l = t.toLowerCase();
        if (ARIA_ROLES.has(l)) return l === 'img' ? 'image' : l;
      }
      return '';
    }
    function scopedLandmark(el, role) {
      for (let p = el.parentElement; p; p = p.parentElement) {
        if (LANDMARK_SCOPE.has(p.localName)) return 'generic';
        const r = p.getAttribute('role');
        if (r && /^(article|complementary|main|navigation|region)$/.test(r)) return 'generic';
      }
      return role;
    }
    function implicitRole(el, tag) {
      const s = SIMPLE[tag];
      if (s) return s;
      switch (tag) {
        case 'a': case 'area': return el.hasAttribute('href') ? 'link' : 'generic';
        case 'img': return el.getAttribute('alt') === '' && !el.title ? 'presentation' : 'image';
        case 'input': {
          const t = (el.getAttribute('type') || 'text').toLowerCase();
          const r = INPUT_ROLE[t];
          if (r !== undefined) return r;
          return el.hasAttribute('list') ? 'combobox' : 'textbox';
        }
        case 'select': return el.multiple || el.size > 1 ? 'listbox' : 'combobox';
        case 'header': return scopedLandmark(el, 'banner');
        case 'footer': return scopedLandmark(el, 'contentinfo');
        case 'section': return el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby') ? 'region' : 'Section';
        case 'td': return inGrid(el) ? 'gridcell' : 'cell';
        case 'th': return thRole(el);
        case 'br': return 'LineBreak';
        case 'svg': return 'graphics-document';
        default: return 'generic';
      }
    }
    function inGrid(el) {
      const t = el.closest('table');
      const r = t && t.getAttribute('role');
      return r === 'grid' || r === 'treegrid';
    }
    function thRole(el) {
      const scope = (el.getAttribute('scope') || '').toLowerCase();
      if (scope === 'row' || scope === 'rowgroup') return 'rowheader';
      if (scope === 'col' || scope === 'colgroup') return 'columnheader';
      const row = el.parentElement;
      if (row && row.parentElement && row.parentElement.localName === 'thead') return 'columnheader';
      // A header cell with data cells beside it in its row heads the row.
      if (row) for (const c of row.children) if (c.localName === 'td') return 'rowheader';
      return 'columnheader';
    }

    // ---- names ----
    const norm = (s) => s.replace(/\s+/g, ' ').trim();
    // Shown inline (or as its children alone): its text flows with its neighbours' where a
    // block's is set apart.
    const flows = (display) => display.startsWith('inline') || display === 'contents';
    function transform(text, tt) {
      switch (tt) {
        case 'uppercase': return text.toUpperCase();
        case 'lowercase': return text.toLowerCase();
        case 'capitalize': return text.replace(/(^|[^\p{L}\p{N}'’])(\p{L})/gu, (m, a, b) => a + b.toUpperCase());
        default: return text;
      }
    }
    // Selectors of the rules that give ::before/::after text, to skip computing pseudo
    // styles for the elements no such rule matches ('*' when a sheet cannot be read).
    let pseudoSel = '*';
    // The elements such a rule matches, found in one pass of the selector engine (null:
    // every element may match).
    let pseudoEls = null;
    let inShadow = 0;
    function pseudoRules() {
      const sels = [];
      const visit = (rules) => {
        for (const r of rules) {
          if (r.cssRules && !r.selectorText) { visit(r.cssRules); continue; }
          const sel = r.selectorText;
          if (!sel || !/:(before|after)/.test(sel)) continue;
          const c = (r.style.content || '').replace(/url\((?:"[^"]*"|'[^']*'|[^)]*)\)/g, '');
          if (!/"[^"]|'[^']|attr\(/.test(c)) continue;
          for (const one of sel.split(',')) {
            if (/:(before|after)/.test(one)) {
              const base = one.replace(/::?(before|after)\b.*$/, '').trim();
              sels.push(base || '*');
            }
          }
          if (r.cssRules && r.cssRules.length) visit(r.cssRules);
        }
      };
      try {
        for (const sheet of document.styleSheets) visit(sheet.cssRules);
        for (const sheet of document.adoptedStyleSheets || []) visit(sheet.cssRules);
      } catch (e) {
        return '*';
      }
      if (!sels.length) return '';
      const all = sels.join(',');
      try { document.body && document.body.matches(all); } catch (e) { return '*'; }
      return all;
    }
    function generated(el, which) {
      if (!inShadow && pseudoEls !== null && !pseudoEls.has(el)) return '';
      const ps = getComputedStyle(el, which);
      const c = ps.content;
      if (!c || c === 'none' || c === 'normal') return '';
      // Quoted strings and attr(); images and counters are left out, and an alternative
      // text after '/' replaces the rest.
      const slash = c.match(/\/\s*((?:"(?:[^"\\]|\\.)*"\s*)+)$/);
      const src = slash ? slash[1] : c.replace(/url\((?:"(?:[^"\\]|\\.)*"|'[^']*'|[^)]*)\)/g, '');
      let out = '';
      for (const m of src.matchAll(/"((?:[^"\\]|\\.)*)"|attr\(\s*([\w-]+)\s*\)/g)) {
        out += m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (el.getAttribute(m[2]) || '');
      }
      if (!out) return '';
      const d = ps.display;
      return d.startsWith('inline') && d !== 'inline-block' ? out : ' ' + out + ' ';
    }
    function byIds(el, attr) {
      const v = el.getAttribute(attr);
      if (!v) return null;
      const root = el.getRootNode();
      const out = [];
      for (const id of v.trim().split(/\s+/)) {
        const t = root.getElementById ? root.getElementById(id) : document.getElementById(id);
        if (t) out.push(t);
      }
      return out.length ? out : null;
    }
    function controlValue(el, role) {
      switch (role) {
        case 'textbox': case 'searchbox': case 'spinbutton': case 'slider':
          return el.value !== undefined ? el.value : (el.getAttribute('aria-valuetext') || el.getAttribute('aria-valuenow') || el.textContent);
        case 'combobox': case 'listbox': {
          if (el.localName === 'select') {
            const o = el.selectedOptions && el.selectedOptions[0];
            return o ? o.label || o.textContent : '';
          }
          return el.value !== undefined ? el.value : '';
        }
        default: return null;
      }
    }
    // The text of a node's content for a name (accname 2E-2G, simplified).
    // `tt`: the node's text-transform (looked up when not given).
    function contentText(node, depth, visited, tt) {
      let out = '';
      const kids = kidsOf(node);
      for (let i = 0; i < kids.length; i++) {
        const c = kids[i];
        if (c.nodeType === 3) {
          if (tt === undefined) {
            const p = c.parentElement;
            tt = p ? getComputedStyle(p).textTransform : 'none';
          }
          out += tt === 'none' ? c.data : transform(c.data, tt);
        } else if (c.nodeType === 1) {
          out += nameOfChild(c, depth + 1, visited);
        }
      }
      return out;
    }
    function nameOfChild(el, depth, visited) {
      const tag = el.localName;
      if (SKIP.has(tag) || visited.has(el) || depth > 30) return '';
      if (el.getAttribute('aria-hidden') === 'true') return '';
      const st = getComputedStyle(el);
      // The walk reads it again when it comes to the element.
      if (ahead) styles.set(el, st);
      const display = st.display;
      if (display === 'none') return '';
      visited.add(el);
      if (st.visibility !== 'visible') {
        // Its own text is hidden; visible descendants still count.
        let t = '';
        const kids = kidsOf(el);
        for (let i = 0; i < kids.length; i++) {
          if (kids[i].nodeType === 1) t += nameOfChild(kids[i], depth + 1, visited);
        }
        return t;
      }
      const block = !flows(display);
      const sp = block ? ' ' : '';
      const explicit = explicitRole(el);
      if (CONTAINERS.has(explicit)) return '';
      const role = explicit || implicitRole(el, tag);
      let t;
      const label = el.getAttribute('aria-label');
      const lb = byIds(el, 'aria-labelledby');
      if (lb) t = lb.map((x) => norm(contentText(x, depth, visited))).join(' ');
      else if (label && label.trim()) t = label;
      else if (role === 'image' && (tag === 'img' || tag === 'area')) t = el.getAttribute('alt') || el.title || '';
      else if (tag === 'input' && (el.type === 'submit' || el.type === 'reset' || el.type === 'button')) t = el.value || (el.type === 'submit' ? 'Submit' : el.type === 'reset' ? 'Reset' : '');
      else if (tag === 'input' && el.type === 'image') t = el.alt || el.value || 'Submit';
      else if (tag === 'br') t = '\n';
      else if (tag === 'wbr') t = ' ';
      else {
        const v = controlValue(el, role);
        if (v !== null && !(tag === 'input' && (el.type === 'checkbox' || el.type === 'radio'))) t = v;
        else if (tag === 'select') t = '';
        else t = generated(el, '::before') + contentText(el, depth, visited, st.textTransform) + generated(el, '::after');
        if (!norm(t) && el.title) t = el.title;
      }
      return sp + t + sp;
    }
    function labelsOf(el) {
      const labels = el.labels;
      if (!labels || !labels.length) return '';
      const visited = new Set([el]);
      return Array.from(labels).map((l) => norm(ownContent(l, visited))).join(' ');
    }
    function nameOf(el, tag, role, tt) {
      const lb = byIds(el, 'aria-labelledby');
      const visited = new Set([el]);
      if (lb) {
        const t = norm(lb.map((x) => x === el ? ownContent(el, visited) : contentText(x, 0, visited)).join(' '));
        if (t) return t;
      }
      const label = el.getAttribute('aria-label');
      if (label && label.trim()) return norm(label);
      let t = '';
      switch (tag) {
        case 'input': {
          const type = el.type;
          if (type === 'submit' || type === 'reset' || type === 'button') {
            t = el.value || (type === 'submit' ? 'Submit' : type === 'reset' ? 'Reset' : '');
            if (!t) t = labelsOf(el);
          } else if (type === 'image') {
            t = el.alt || el.value || el.title || 'Submit';
          } else {
            t = labelsOf(el) || el.title || el.placeholder || '';
            if (!t && (type === 'file')) t = '';
          }
          return norm(t);
        }
        case 'select': case 'textarea': case 'meter': case 'progress': case 'output':
          return norm(labelsOf(el) || el.title || el.getAttribute('placeholder') || '');
        case 'img': case 'area': return norm(el.getAttribute('alt') || el.title || '');
        case 'fieldset': {
          const lg = el.querySelector(':scope > legend');
          t = lg ? contentText(lg, 0, visited) : '';
          break;
        }
        case 'table': {
          const cap = el.querySelector(':scope > caption');
          t = cap ? contentText(cap, 0, visited) : '';
          break;
        }
        case 'svg': {
          const ti = el.querySelector(':scope > title');
          t = ti ? ti.textContent : '';
          break;
        }
        case 'optgroup': t = el.label; break;
        case 'option': t = el.label || ''; break;
        default:
          if (FROM_CONTENT.has(role)) t = ownContent(el, visited, tt);
      }
      t = norm(t);
      if (!t && (WIDGET.has(role) || role === 'heading')) {
        // A control without a name is named by a label around it or for it.
        if (el.labels && el.labels.length) t = labelsOf(el);
      }
      if (!t && el.title) t = norm(el.title);
      return t;
    }
    function ownContent(el, visited, tt) {
      return generated(el, '::before') + contentText(el, 0, visited, tt) + generated(el, '::after');
    }

    // ---- the walk ----
    function kidsOf(node) {
      const sr = rootOf(node);
      if (sr) return sr.childNodes;
      if (node.localName === 'slot') {
        const a = node.assignedNodes({ flatten: true });
        return a.length ? a : node.childNodes;
      }
      return node.childNodes;
    }
    let out;
    // Styles that names read before the walk came to their elements.
    let styles = new Map();
    // Whether a name is computed ahead of the walk (its styles are then kept for the walk).
    let ahead = true;
    // Names from content are read off the walk's own text (walkedText) when it holds all a
    // name would read. `lost` counts what the walk leaves out of its text that a name would
    // read: a subtree with a loss is named by the rules instead.
    let lost = 0;
    // Text runs that are not all spaces, counted while `watch` (> 0) says so.
    let solid = 0;
    let watch = 0;
    // Per item of `out` (by index): OPAQUE (its part of an ancestor's name is not its text) and
    // BLOCK (shown as a block: a name spaces its text out).
    let meta = new Uint8Array(4096);
    const OPAQUE = 1;
    const BLOCK = 2;
    function mark(i, m) {
      if (i >= meta.length) {
        const grown = new Uint8Array(meta.length * 2);
        grown.set(meta);
        meta = grown;
      }
      meta[i] = m;
    }
    let viewport;
    let vw;
    let vh;
    let modal;
    let numbers;
    let urls;

    const NATIVE_STATE = new Set(['input', 'option', 'summary', 'select', 'textarea', 'dialog',
      'button', 'fieldset', 'optgroup']);
    function states(el, tag, role, kinds) {
      if (el !== active && !NATIVE_STATE.has(tag) && !(kinds & STATEFUL)) return 0;
      let f = 0;
      const a = (n) => el.getAttribute(n);
      const checked = a('aria-checked');
      if (tag === 'input' && (el.type === 'checkbox' || el.type === 'radio')) {
        if (el.indeterminate) f |= F.MIXED;
        else if (el.checked) f |= F.CHECKED;
        controls.push([el, controlState(el)]);
      } else if (checked === 'true') f |= F.CHECKED;
      else if (checked === 'mixed') f |= F.MIXED;
      const pressed = a('aria-pressed');
      if (pressed === 'true') f |= F.PRESSED;
      else if (pressed === 'mixed') f |= F.PRESSED_MIXED;
      if (tag === 'option') {
        if (el.selected) f |= F.SELECTED;
      } else if (a('aria-selected') === 'true') f |= F.SELECTED;
      const exp = a('aria-expanded');
      if (tag === 'summary' && el.parentElement && el.parentElement.localName === 'details') {
        f |= el.parentElement.open ? F.EXPANDED : F.COLLAPSED;
      } else if (exp === 'true') f |= F.EXPANDED;
      else if (exp === 'false') f |= F.COLLAPSED;
      if ((WIDGET.has(role) && (el.disabled === true || el.matches(':disabled'))) || a('aria-disabled') === 'true') f |= F.DISABLED;
      if (tag === 'input' && el.type === 'checkbox' && el.required) {
        // As the accessibility tree has it: an unchecked required box is invalid.
        if (!el.checked) f |= F.INVALID;
      } else if (el.required === true || a('aria-required') === 'true') f |= F.REQUIRED;
      if ((el.readOnly === true && (tag === 'input' || tag === 'textarea')) || a('aria-readonly') === 'true') f |= F.READONLY;
      const inv = a('aria-invalid');
      if (inv && inv !== 'false') f |= F.INVALID;
      if (el === active) f |= F.FOCUSED;
      if ((tag === 'dialog' && el.matches(':modal')) || a('aria-modal') === 'true') f |= F.MODAL;
      if ((tag === 'select' && el.multiple) || a('aria-multiselectable') === 'true') f |= F.MULTISELECTABLE;
      if (a('aria-busy') === 'true') f |= F.BUSY;
      if (el.isContentEditable && (!el.parentElement || !el.parentElement.isContentEditable)) f |= F.EDITABLE | F.FOCUSABLE;
      return f;
    }
    function valueOf(el, tag, role) {
      const a = (n) => el.getAttribute(n);
      switch (role) {
        case 'slider': case 'spinbutton': case 'progressbar': case 'meter': case 'scrollbar': {
          let v = a('aria-valuetext') || '';
          if (!v) v = tag === 'input' || tag === 'progress' || tag === 'meter' ? String(el.value) : (a('aria-valuenow') || '');
          if (tag === 'progress' && !el.hasAttribute('value')) v = '';
          if (role === 'slider') {
            const lo = tag === 'input' ? (el.min || '0') : a('aria-valuemin');
            const hi = tag === 'input' ? (el.max || '100') : a('aria-valuemax');
            if (lo && hi && v) v += ` (${lo}..${hi})`;
          }
          if (tag === 'input') controls.push([el, controlState(el)]);
          return v;
        }
        case 'textbox': case 'searchbox': case 'Date': case 'DateTime': case 'InputTime':
        case 'ColorWell': case 'combobox': {
          if (tag === 'input' || tag === 'textarea') {
            controls.push([el, controlState(el)]);
            if (el.type === 'password') return el.value ? '•'.repeat(el.value.length) : '';
            return el.value;
          }
          if (tag === 'select') {
            controls.push([el, controlState(el)]);
            const o = el.selectedOptions[0];
            return o ? norm(o.label || o.textContent) : '';
          }
          return role === 'textbox' || role === 'searchbox' ? el.innerText : '';
        }
        case 'button':
          if (tag === 'input' && el.type === 'file') {
            controls.push([el, controlState(el)]);
            return el.files && el.files.length ? Array.from(el.files).map((f) => f.name).join(', ') : 'No file chosen';
          }
          return '';
        case 'listbox':
          if (tag === 'select') controls.push([el, controlState(el)]);
          return '';
        default: return '';
      }
    }
    function clickable(kinds, c, pcur) {
      if (kinds & HANDLER) return true;
      // A cursor of its own (the same as the parent's is inherited).
      if ((c === 'pointer' || c === 'grab' || c === 'move') && c !== pcur) return true;
      return false;
    }
    function inView(el) {
      const r = el.getBoundingClientRect();
      return r.right > 0 && r.bottom > 0 && r.left < vw && r.top < vh && (r.width > 0 || r.height > 0);
    }
    // Whitespace a text run's spaces collapse from (a test allocates nothing; most runs
    // of a big page need no replacing).
    const SPACES = /\s\s|[\t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]/;
    function pushText(data, pre, tt) {
      let t = pre ? (data.includes('\r') ? data.replace(/\r\n?/g, '\n') : data)
        : SPACES.test(data) ? data.replace(/\s+/g, ' ') : data;
      if (!t) return;
      if (tt !== 'none') t = transform(t, tt);
      text(t);
    }
    // Appends a text run; runs that follow each other in one element join (but a lone
    // line break, which stands for a LineBreak).
    let textAt = -1;
    function text(t) {
      if (watch && /\S/.test(t)) solid++;
      if (textAt === out.length && t !== '\n' && out[textAt - 1] !== '\n') out[textAt - 1] += t;
      else out.push(t);
      textAt = out.length;
    }
    // Emits `el` (and its subtree) unless it is hidden. `pcur`: the parent's cursor.
    function walk(el, pcur, depth) {
      const tag = el.localName;
      if (SKIP.has(tag)) return;
      if (el.getAttribute('aria-hidden') === 'true') return;
      if (el.inert) { lost++; return; }
      if (modal && el !== modal && !el.contains(modal) && !modal.contains(el) && el.getRootNode() === document) return;
      let st = styles.size ? styles.get(el) : undefined;
      if (st) styles.delete(el);
      else st = getComputedStyle(el);
      // (Each property read of a computed style makes a value and its text: once each.)
      const display = st.display;
      if (display === 'none') return;
      const shown = st.visibility === 'visible';
      if (tag === 'slot') { walkKids(el, st, shown, pcur, depth); return; }
      let role = explicitRole(el) || implicitRole(el, tag);
      if (role === '') { lost++; return; } // <input type=hidden>
      // Focusable: in the tab order, or (tabindex=-1) by script in a widget, like a grid
      // cell of a roving focus.
      const ti = el.tabIndex;
      const focusable = !el.disabled && (ti >= 0 || (ti === -1 && el.hasAttribute('tabindex') && role !== 'generic' && role !== 'none' && role !== 'presentation' && role !== 'Section' && role !== 'paragraph'));
      if ((role === 'none' || role === 'presentation') && (focusable || el.hasAttribute('aria-label'))) {
        role = implicitRole(el, tag);
      }
      const cursor = st.cursor;
      if (!shown) {
        // Invisible itself, its visible descendants still show.
        walkKids(el, st, false, cursor, depth);
        return;
      }
      const kinds = attrKinds(el);
      let flags = states(el, tag, role, kinds);
      if (focusable && role !== 'Iframe') flags |= F.FOCUSABLE;
      const widget = WIDGET.has(role);
      let click = false;
      if (!widget && !(flags & F.EDITABLE)) {
        click = clickable(kinds, cursor, pcur);
        if (click) flags |= F.CLICKABLE;
      }
      const refd = widget || click || (flags & (F.EDITABLE | F.FOCUSABLE)) !== 0;
      const flowing = flows(display);
      const plain = (role === 'generic' || role === 'none' || role === 'presentation') && !refd;
      if ((plain || (INLINE_ROLES.has(role) && !refd)) && !el.hasAttribute('aria-label') && depth > 0) {
        // Inline text semantics and inline wrappers: their text flows into the parent's.
        const inline = INLINE_ROLES.has(role) || flowing;
        if (inline) {
          // (A name spaces out a block's text and reads <wbr> as a space; the walk's text does not.)
          if ((kinds & LABELLEDBY) || tag === 'wbr' || !flowing) lost++;
          const titled = kinds & TITLED;
          const solidAt = solid;
          if (titled) watch++;
          const b = generated(el, '::before');
          if (b) text(b);
          walkKids(el, st, true, cursor, depth);
          const a = generated(el, '::after');
          if (a) text(a);
          if (titled) {
            watch--;
            // Without text of its own, a name reads its title.
            if (solid === solidAt) lost++;
          }
          return;
        }
      }
      if (tag === 'svg' && !el.getAttribute('aria-label') && !el.querySelector(':scope > title') && !refd) { lost++; return; }
      const at = out.length;
      // Wrappers need no id (nothing refers to them), but in a viewport walk, where the
      // text under them is placed by them.
      const id = plain && !viewport ? 0 : idOf(el);
      if (viewport && inView(el)) flags |= F.IN_VIEW;
      // Rows and cells show their content, not their name (src/snapshot/build.rs flattens
      // rows and dissolves cells): only a cell with a ref needs one.
      const fromContent = FROM_CONTENT.has(role) && (CONTENT_SHOWN.has(role) ? refd && role !== 'row' : true);
      const labelled = el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby');
      // A name from content is read off the walk's text after the subtree's walk (late); the
      // rules compute it there when that text cannot tell it.
      const late = fromContent && !labelled && !modal && !OWN_NAME_TAGS.has(tag);
      const name = plain || late ? '' : (role === 'heading' || widget || NAMED_ALWAYS.has(role) || fromContent || click || labelled ? nameOf(el, tag, role, st.textTransform) : '');
      const lostAt = lost;
      const value = valueOf(el, tag, role);
      let level = 0;
      if (role === 'heading') {
        const l = +el.getAttribute('aria-level');
        level = l > 0 ? l : (/^h[1-6]$/.test(tag) ? +tag[1] : 2);
      }
      const url = urls && role === 'link' && el.href ? String(el.href) : '';
      // Trailing parts that are empty are left out.
      // (Made at its final length: an array grown by push leaves garbage behind.)
      const item = url ? [0, id, role, name, flags, value, level, url]
        : level ? [0, id, role, name, flags, value, level]
          : value ? [0, id, role, name, flags, value]
            : flags ? [0, id, role, name, flags]
              : name || late ? [0, id, role, name] : [0, id, role];
      out.push(item);
      const own = labelled || OWN_NAME_TAGS.has(tag) || CONTAINERS.has(role) || VALUED.has(role);
      // A title is read when the element has no text: known after its walk.
      const titled = !own && (kinds & TITLED) !== 0;
      mark(at, (own || titled ? OPAQUE : 0) | (flowing ? 0 : BLOCK));
      const list = el.parentElement;
      if (tag === 'li' && list && list.localName === 'ol' && display === 'list-item' && st.listStyleType === 'decimal') {
        let n = numbers.get(list);
        if (n === undefined) n = list.start;
        if (el.hasAttribute('value')) n = el.value;
        numbers.set(list, n + 1);
        mark(out.length, 0);
        out.push([0, 0, 'ListMarker', `${n}.`, 0]);
      }
      if (tag === 'select') {
        const option = (o) => out.push([0, idOf(o), 'option', norm(o.label || o.textContent),
          (o.selected ? F.SELECTED : 0) | (o.disabled ? F.DISABLED : 0)]);
        for (const c of el.children) {
          if (c.localName === 'option') option(c);
          else if (c.localName === 'optgroup') {
            const g = [0, idOf(c), 'group', norm(c.label), 0];
            const gat = out.length;
            out.push(g);
            for (const o of c.children) if (o.localName === 'option') option(o);
            g[0] = out.length - gat - 1;
          }
        }
      } else if (!(role === 'image' && tag === 'img') && !LEAF_TAGS.has(tag)) {
        if (tag === 'details' && !el.open) {
          const s = el.querySelector(':scope > summary');
          if (s) walk(s, cursor, depth + 1);
        } else {
          const b = generated(el, '::before');
          if (b) text(b);
          walkKids(el, st, true, cursor, depth + 1);
          const a = generated(el, '::after');
          if (a) text(a);
        }
      }
      item[0] = out.length - at - 1;
      textAt = -1;
      if (late || titled) {
        const t = lost === lostAt ? norm(walkedText(at)) : '';
        if (t && titled) meta[at] &= ~OPAQUE;
        if (late) {
          let n = t;
          if (!n) {
            ahead = false;
            n = nameOf(el, tag, role, st.textTransform);
            ahead = true;
          }
          if (n) item[3] = n;
          else if (item.length === 4) item.pop();
        }
      }
    }
    // The text a name from content reads in the subtree of the item at `at`, from the walk's
    // output: its text runs, with a space around the elements shown as blocks; '' when an
    // element in it takes part otherwise (OPAQUE), for the rules to compute.
    function walkedText(at) {
      const end = out.length;
      let t = '';
      const closes = [];
      for (let i = at + 1; i < end; i++) {
        while (closes.length && closes[closes.length - 1] < i) { t += ' '; closes.pop(); }
        const x = out[i];
        if (typeof x === 'string') { t += x; continue; }
        const m = meta[i];
        if (m & OPAQUE) return '';
        if (m & BLOCK) { t += ' '; closes.push(i + x[0]); }
      }
      return t;
    }
    function walkKids(el, st, shown, ptr, depth) {
      const shadow = rootOf(el);
      if (shadow) { observe(shadow); inShadow++; } else if (hosts.length < MAX_HOSTS && (adopted || askedCount < MAX_HOSTS)
        && el.localName.includes('-') && !asked.has(el)) {
        asked.add(el);
        askedCount++;
        hosts.push(idOf(el));
      }
      if (depth <= 1000) {
        let pre = null;
        let tt = null;
        // Children by their links (no child list made for every element); a slot's
        // assigned nodes from their list.
        const slotted = shadow || el.localName !== 'slot' ? null : kidsOf(el);
        const first = slotted ? slotted[0] : (shadow || el).firstChild;
        for (let c = first, i = 0; c; c = slotted ? slotted[++i] : c.nextSibling) {
          if (c.nodeType === 3) {
            if (!shown) continue;
            if (pre === null) {
              const ws = st.whiteSpace;
              pre = ws.startsWith('pre') || ws === 'break-spaces';
              tt = st.textTransform;
            }
            pushText(c.data, pre, tt);
          } else if (c.nodeType === 1) {
            walk(c, ptr, depth);
          }
        }
      }
      if (shadow) inShadow--;
    }

    function collect(o) {
      if (o.gen === gen && unchanged()) return [gen];
      // Only the walks whose answer is kept for reuse set what `unchanged` compares with.
      const saved = [controls, active, hoverRules, hovered];
      out = [];
      controls = [];
      active = deepActive();
      numbers = new Map();
      viewport = !!o.viewport;
      urls = !!o.urls;
      vw = window.innerWidth;
      vh = window.innerHeight;
      modal = document.querySelector('dialog:modal');
      hoverRules = findHoverRules();
      pseudoSel = pseudoRules();
      pseudoEls = pseudoSel === '*' ? null : new Set(pseudoSel ? document.querySelectorAll(pseudoSel) : []);
      textAt = -1;
      hosts = [];
      styles = new Map();
      hovered = hoverChain();
      const root = document.documentElement;
      const doc = [0, 0, 'RootWebArea', norm(document.title), 0, '', 0, String(location.href)];
      out.push(doc);
      if (root && document.body) walk(document.body, false, 0);
      doc[0] = out.length - 1;
      const items = out;
      out = null;
      styles = new Map();
      if (!o.track) [controls, active, hoverRules, hovered] = saved;
      return hosts.length ? [gen, String(location.href), items, hosts] : [gen, String(location.href), items];
    }
    return { collect, idOf, el: elOf, adopt };
  })());
  if (opts.op === 'id') return T.idOf(opts.el);
  if (opts.op === 'el') return T.el(opts.id);
  // As one JSON text: a single string crosses CDP (and the extension) far cheaper than
  // tens of thousands of small arrays.
  return JSON.stringify(T.collect(opts));
}
