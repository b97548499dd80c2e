// What a client may reach through the extension: which pages may be controlled and
// which CDP commands are relayed. A client must never escape its tabs: not into the
// extension's own pages (they can call chrome.debugger on every tab), not into the
// browser's pages, not into other tabs through the Target domain, not into the
// cookie jar of every site. Pure: no chrome.* here.

import { Codes, TabmuxError } from './errors.js';
import { CDP_METHODS } from './cdp-methods.js';

/** Schemes whose pages no client may control, whatever the browser would allow. */
const FORBIDDEN_SCHEMES = new Set([
  'chrome', 'chrome-extension', 'chrome-untrusted', 'devtools', 'chrome-search', 'chrome-devtools',
  'edge', 'brave', 'opera', 'vivaldi', 'extension', 'moz-extension', 'isolated-app',
]);

/** Schemes whose URL carries another URL whose origin counts (`blob:https://…`). */
const WRAPPING_SCHEMES = new Set(['view-source', 'blob', 'filesystem']);

const ALLOWED = new Set(CDP_METHODS);

/** The URL as the browser reads it: no leading/trailing spaces or controls, no tabs or newlines inside. */
function normalize(url) {
  // eslint-disable-next-line no-control-regex
  return String(url).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

/**
 * Why a page at `url` may not be controlled by a client, or null when it may.
 * `allowFile`: the user turned on file:// access in the popup. '' (a tab still
 * loading) is allowed: the URL it goes to is checked when it is known.
 */
export function forbiddenReason(url, { allowFile = false } = {}, depth = 0) {
  if (url == null) return null;
  const u = normalize(url);
  if (!u) return null;
  if (depth > 4) return 'a URL nested too deeply';
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(u);
  if (!m) return null; // a relative URL: the browser resolves it against the page's own
  const scheme = m[1].toLowerCase();
  const rest = u.slice(m[0].length);
  if (FORBIDDEN_SCHEMES.has(scheme)) return `${scheme}:// pages (the browser's and extensions' own pages) are off limits`;
  if (scheme === 'about') {
    const what = rest.split(/[?#]/)[0].toLowerCase();
    return what === 'blank' || what === 'srcdoc' ? null : 'about: pages other than about:blank are off limits';
  }
  if (scheme === 'file') return allowFile ? null : 'file:// pages are off unless the user allows them in the tabmux popup';
  if (WRAPPING_SCHEMES.has(scheme)) return forbiddenReason(rest, { allowFile }, depth + 1);
  return null;
}

/** FORBIDDEN_PAGE: the tab shows a page no client may control. */
export function forbiddenPage(tabId, url, reason) {
  return new TabmuxError(
    Codes.FORBIDDEN_PAGE,
    `tab ${tabId} shows ${String(url).slice(0, 100)}, a page tabmux may not control (${reason}); the debugger was detached — navigate the tab elsewhere or use another tab`,
    { tabId, url: String(url).slice(0, 200) },
  );
}

/** FORBIDDEN_URL: a navigation to a page no client may control. */
export function forbiddenUrl(url, reason) {
  return new TabmuxError(Codes.FORBIDDEN_URL, `${String(url).slice(0, 100)} can't be opened by tabmux: ${reason}`, { url: String(url).slice(0, 200) });
}

/** Whether a CDP command may be relayed at all (the list tabmux sends). */
export function isAllowedMethod(method) {
  return ALLOWED.has(method);
}

/**
 * Checks one `cdp` request before it reaches the browser: the method is one tabmux
 * uses, and a navigation goes nowhere forbidden. Throws FORBIDDEN_METHOD / FORBIDDEN_URL.
 */
export function checkCommand(method, params, opts) {
  if (!ALLOWED.has(method)) {
    throw new TabmuxError(
      Codes.FORBIDDEN_METHOD,
      `the extension does not relay ${String(method).slice(0, 60)}: only the CDP commands tabmux uses on its own tabs are relayed`,
      { method: String(method).slice(0, 60) },
    );
  }
  if (method === 'Page.navigate') {
    const url = params && params.url;
    if (typeof url !== 'string') throw new TabmuxError(Codes.BAD_REQUEST, 'Page.navigate needs a url');
    const why = forbiddenReason(url, opts);
    if (why) throw forbiddenUrl(url, why);
  }
  if (method === 'Target.setAutoAttach' && params && params.flatten !== true) {
    throw new TabmuxError(Codes.FORBIDDEN_METHOD, 'Target.setAutoAttach is relayed with flatten: true only');
  }
}

/**
 * Child sessions (out-of-process iframes, workers) of held tabs and their URLs, from
 * the Target events the extension relays: a child showing a forbidden page gets no
 * commands.
 */
export class Sessions {
  constructor() {
    /** tabId → Map(sessionId → url) */
    this.byTab = new Map();
  }

  /** Follows Target.attachedToTarget / detachedFromTarget / targetInfoChanged of a tab's sessions. */
  onEvent(tabId, method, params) {
    if (!params) return;
    let m = this.byTab.get(tabId);
    if (method === 'Target.attachedToTarget' && params.sessionId && params.targetInfo) {
      if (!m) this.byTab.set(tabId, (m = new Map()));
      if (m.size < 1000) m.set(params.sessionId, { targetId: params.targetInfo.targetId, url: params.targetInfo.url || '' });
    } else if (method === 'Target.detachedFromTarget' && m) {
      m.delete(params.sessionId);
    } else if (method === 'Target.targetInfoChanged' && m && params.targetInfo) {
      for (const s of m.values()) if (s.targetId === params.targetInfo.targetId) s.url = params.targetInfo.url || '';
    }
  }

  url(tabId, sessionId) {
    const m = this.byTab.get(tabId);
    const s = m && m.get(sessionId);
    return s ? s.url : null;
  }

  forget(tabId) {
    this.byTab.delete(tabId);
  }
}
