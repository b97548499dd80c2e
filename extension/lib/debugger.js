// chrome.debugger bookkeeping: which tabs are attached, error classification,
// which URLs the browser never lets an extension debug. Pure: the debugger API
// is injected as { attach(tabId), detach(tabId), sendCommand(target, method, params) }.

import { Codes, TabmuxError } from './errors.js';

const UNATTACHABLE_SCHEMES = ['chrome:', 'chrome-extension:', 'chrome-untrusted:', 'devtools:', 'chrome-search:', 'chrome-devtools:', 'edge:', 'brave:', 'opera:', 'vivaldi:'];
const STORE_PREFIXES = ['https://chromewebstore.google.com/', 'https://chrome.google.com/webstore'];

/** Whether the browser lets an extension debug a tab showing `url` ('' while loading: assume yes). */
export function isAttachableUrl(url) {
  if (!url) return true;
  const u = String(url).toLowerCase();
  if (UNATTACHABLE_SCHEMES.some((s) => u.startsWith(s))) return false;
  if (STORE_PREFIXES.some((p) => u.startsWith(p))) return false;
  if (u.startsWith('view-source:')) return isAttachableUrl(u.slice('view-source:'.length));
  return true;
}

export function notAttachable(tabId, url, detail) {
  const where = url ? ` (${String(url).slice(0, 80)})` : '';
  return new TabmuxError(
    Codes.NOT_ATTACHABLE,
    `the browser does not let extensions debug tab ${tabId}${where}: chrome:// pages, other extensions' pages and the Web Store are off limits${detail ? `; ${detail}` : ''}`,
    { tabId },
  );
}

function messageOf(e) {
  return (e && (e.message || String(e))) || 'unknown error';
}

/** A failed attach → NOT_ATTACHABLE / TAB_CLOSED / CDP_ERROR. */
export function classifyAttachError(e, tabId, url) {
  const msg = messageOf(e);
  if (/no tab with (given )?id/i.test(msg)) return new TabmuxError(Codes.TAB_CLOSED, `tab ${tabId} is gone`, { tabId, reason: 'user' });
  if (/cannot (access|attach)|chrome:\/\/|chrome-extension|is not allowed|cannot be (scripted|debugged)/i.test(msg)) return notAttachable(tabId, url, msg);
  if (/another debugger is already attached/i.test(msg)) return notAttachable(tabId, url, msg);
  return new TabmuxError(Codes.CDP_ERROR, `attaching to tab ${tabId} failed: ${msg}`, { cdpCode: null, cdpMessage: msg });
}

/**
 * A failed sendCommand → CDP_ERROR with the CDP code and message when the
 * browser gave them ("{"code":-32000,"message":"…"}"), TAB_CLOSED when the tab is gone.
 */
export function classifyCommandError(e, tabId, method) {
  const msg = messageOf(e);
  if (/no tab with (given )?id/i.test(msg)) return new TabmuxError(Codes.TAB_CLOSED, `tab ${tabId} is gone`, { tabId, reason: 'user' });
  let cdpCode = null;
  let cdpMessage = msg;
  try {
    const j = JSON.parse(msg);
    if (j && typeof j === 'object') {
      if (Number.isFinite(j.code)) cdpCode = j.code;
      if (typeof j.message === 'string') cdpMessage = j.message + (typeof j.data === 'string' ? ` (${j.data})` : '');
    }
  } catch {
    /* not JSON */
  }
  return new TabmuxError(Codes.CDP_ERROR, `${method}: ${cdpMessage}`, { cdpCode, cdpMessage });
}

export function isNotAttachedError(e) {
  return /not attached/i.test(messageOf(e));
}

export function isAlreadyAttachedError(e) {
  return /already attached/i.test(messageOf(e));
}

export class Debuggers {
  constructor({ api, log = () => {} }) {
    this.api = api;
    this.log = log;
    /** tabId → the instance the current attachment was made for. */
    this.attached = new Map();
  }

  isAttached(tabId) {
    return this.attached.has(tabId);
  }

  /** The instance for which the tab's debugger was attached (its events go there only). */
  owner(tabId) {
    return this.attached.get(tabId);
  }

  /** Attach (idempotent). Throws NOT_ATTACHABLE / TAB_CLOSED / CDP_ERROR. */
  async attach(tabId, url, owner) {
    if (this.attached.has(tabId)) {
      this.attached.set(tabId, owner);
      return false;
    }
    try {
      await this.api.attach(tabId);
    } catch (e) {
      // After a worker restart the old attachment may still be there.
      if (!isAlreadyAttachedError(e)) throw classifyAttachError(e, tabId, url);
    }
    this.attached.set(tabId, owner);
    return true;
  }

  async detach(tabId) {
    const was = this.attached.delete(tabId);
    try {
      await this.api.detach(tabId);
    } catch {
      /* not attached or gone */
    }
    return was;
  }

  /** chrome.debugger.onDetach */
  detached(tabId) {
    this.attached.delete(tabId);
  }

  forget(tabId) {
    this.attached.delete(tabId);
  }
}
