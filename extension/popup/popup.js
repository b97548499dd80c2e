// The status popup: asks the service worker for its status once a second. It also
// asks the user's consent ("‹client› wants to use ‹title› — Allow / Deny") and lets
// the user take any held tab back with one click. A copy without a secret (the store's)
// shows "Pair with tabmux": the code of `tabmux extension pair` goes to the worker.

const COLORS = { grey: '#5f6368', blue: '#1a73e8', red: '#d93025', yellow: '#f9ab00', green: '#188038', pink: '#d01884', purple: '#a142f4', cyan: '#007b83', orange: '#fa903e' };

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'style') Object.assign(e.style, v);
    else if (k === 'class') e.className = v;
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function ago(ms) {
  if (ms == null || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const POLICY = {
  ask: 'asks before using your tabs',
  allow: 'may use your tabs without asking',
  deny: 'never uses your tabs',
};

async function send(msg) {
  const res = await chrome.runtime.sendMessage(msg);
  if (res && res.error) $('instances').prepend(el('p', { class: 'muted', textContent: res.error }));
  refresh();
}

function takeBackButton(tabId) {
  return el('button', { class: 'take-back', title: 'Take this tab back: the client loses it at once; it stays open for you', textContent: 'Take back', onclick: () => send({ type: 'takeBack', tabId }) });
}

function renderAsks(asks) {
  $('asks-section').hidden = !asks.length;
  $('asks').replaceChildren(...asks.map((a) => {
    const node = el('div', { class: 'ask' },
      el('div', {}, el('span', { class: 'who', textContent: a.label }), ' wants to use ', el('strong', { textContent: a.title || `tab ${a.tabId}` })),
      el('div', { class: 'url', textContent: a.url }),
      el('div', { class: 'buttons' },
        el('button', { class: 'allow', textContent: 'Allow', onclick: () => send({ type: 'consent', id: a.id, allow: true }) }),
        el('button', { class: 'deny', textContent: 'Deny', onclick: () => send({ type: 'consent', id: a.id, allow: false }) }),
        el('span', { class: 'muted', textContent: `${ago(a.timeoutInMs)} left` })));
    node.dataset.ask = String(a.id);
    node.dataset.tab = String(a.tabId);
    return node;
  }));
}

function renderAllowed(allowed) {
  const free = allowed.filter((t) => !t.held);
  $('allowed-section').hidden = !free.length;
  $('allowed').replaceChildren(...free.map((t) => {
    const row = el('p', {}, el('strong', { textContent: t.title || t.url || `tab ${t.tabId}` }), ` — ${t.labels.join(', ')} `, takeBackButton(t.tabId));
    row.dataset.tab = String(t.tabId);
    return row;
  }));
}

function render(st) {
  renderAsks(st.asks || []);
  renderAllowed(st.allowed || []);
  $('version').textContent = st.version ? `v${st.version}` : '';
  const live = st.instances.filter((i) => i.connected).length;
  $('summary').textContent = `${live} connected · ports ${st.range.from}–${st.range.to}`;
  const tabsById = new Map(st.tabs.map((t) => [t.tabId, t]));

  const box = $('instances');
  box.replaceChildren();
  if (!st.instances.length) box.append(el('p', { class: 'muted', textContent: `No tabmux found on ports ${st.range.from}–${st.range.to}.` }));
  for (const i of st.instances) {
    const state = i.connected ? 'connected' : i.status === 'grace' ? `reconnecting · ${ago(i.graceLeftMs)} left` : i.status;
    const head = el('div', { class: 'inst-head' },
      el('span', { class: 'dot', style: { background: COLORS[i.color] || '#999' } }),
      el('span', { class: 'name', textContent: i.label }),
      el('span', { class: 'meta', textContent: i.port ? `port ${i.port}` : '' }),
      el('span', { class: `state ${i.connected ? 'connected' : 'grace'}`, textContent: state }));
    const meta = el('div', { class: 'meta', textContent: `last activity ${ago(i.lastActivityMs)} ago · lease ${ago(i.leaseMs)}` });
    const policy = el('div', { class: 'policy', textContent: `user tabs: ${i.userTabs || 'ask'} — ${POLICY[i.userTabs] || POLICY.ask}` });
    const table = el('table');
    for (const tabId of i.tabs) {
      const t = tabsById.get(tabId);
      if (!t) continue;
      const row = el('tr', {},
        el('td', { class: 'title', title: t.url, textContent: t.title || t.url || `tab ${tabId}` }),
        el('td', {}, el('span', { class: 'tag', textContent: t.created ? 'created' : 'borrowed' })),
        el('td', { class: 'num', title: 'held for', textContent: `held ${ago(t.heldForMs)}` }),
        el('td', { class: 'num', title: 'since the last command', textContent: `idle ${ago(t.leaseAgeMs)}` }),
        el('td', {}, takeBackButton(tabId)));
      row.dataset.tab = String(tabId);
      table.append(row);
    }
    const node = el('div', { class: 'inst' }, head, meta, policy);
    if (i.tabs.length) node.append(table);
    else node.append(el('div', { class: 'muted', textContent: 'no tabs' }));
    box.append(node);
  }

  const wait = $('waiting');
  wait.replaceChildren();
  const queued = st.tabs.filter((t) => t.waiters.length);
  if (!queued.length) wait.append(el('p', { class: 'muted', textContent: 'Nobody waits.' }));
  for (const t of queued) {
    const names = t.waiters.map((w) => `${w.label} (${ago(w.waitedMs)}${w.live ? '' : ', disconnected'})`).join(', ');
    wait.append(el('p', {}, el('strong', { textContent: t.title || `tab ${t.tabId}` }), ` held by ${t.holder.name}: `, names));
  }

  const errs = st.errors || [];
  $('errors-section').hidden = !errs.length;
  $('errors').replaceChildren(...errs.map((e) => el('li', { textContent: `${e.code}${e.port ? ` (port ${e.port})` : ''}: ${e.message}` })));

  $('allow-file').checked = st.allowFile === true;
  renderPairing(st.pairing);

  if (document.activeElement !== $('from') && document.activeElement !== $('to')) {
    $('from').value = st.range.from;
    $('to').value = st.range.to;
  }
}

/** No secret: the pairing form. A pasted code: the way to forget it. */
function renderPairing(pairing) {
  $('pair-section').hidden = pairing != null;
  $('paired-section').hidden = pairing !== 'paired';
  if (pairing === 'paired') $('paired-text').textContent = 'Paired with the code of "tabmux extension pair" (stored in this browser profile).';
}

async function refresh() {
  try {
    const st = await chrome.runtime.sendMessage({ type: 'status' });
    if (st && !st.error) render(st);
    else if (st && st.error) $('instances').textContent = st.error;
  } catch (e) {
    $('instances').textContent = `The extension did not answer: ${e.message}`;
  }
}

$('range').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const from = Number($('from').value);
  const to = Number($('to').value);
  const res = await chrome.runtime.sendMessage({ type: 'setRange', from, to });
  $('range-msg').textContent = res && res.ok ? 'saved' : (res && res.error) || 'failed';
  refresh();
});

$('pair').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('pair-msg').textContent = '';
  const res = await chrome.runtime.sendMessage({ type: 'pair', code: $('pair-code').value });
  if (res && res.ok) $('pair-code').value = '';
  else $('pair-msg').textContent = (res && res.error) || 'pairing failed';
  refresh();
});

$('unpair').addEventListener('click', async () => {
  await chrome.runtime.sendMessage({ type: 'unpair' });
  refresh();
});

$('allow-file').addEventListener('change', async (ev) => {
  await chrome.runtime.sendMessage({ type: 'setFileAccess', allow: ev.target.checked });
  refresh();
});

refresh();
setInterval(refresh, 1000);
