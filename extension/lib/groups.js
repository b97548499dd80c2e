// Paints each instance's tabs as one tab group per window, titled with the
// instance's label and in its colour. Best effort: a failure here (a tab in a
// popup window, a tab being dragged) is logged and never breaks locking.
// Every operation runs on one chain, so two tabs of one instance never create
// two groups in one window.

const NO_GROUP = -1;
const OP_TIMEOUT_MS = 5_000;

export class GroupPainter {
  /**
   * @param o.api   { tabs: {get, group, ungroup}, windows: {get}, tabGroups: {get, query, update} }
   * @param o.identity (instanceId) → {label, color} | null
   * @param o.clock    {setTimeout, clearTimeout}
   */
  constructor({ api, identity, clock, log = () => {} }) {
    this.api = api;
    this.identity = identity;
    this.clock = clock;
    this.log = log;
    this._tail = Promise.resolve();
    /** tabId → the group the tab was in before it first joined a holder's group. */
    this.origin = new Map();
  }

  /** The tab is gone. */
  forget(tabId) {
    this.origin.delete(tabId);
  }

  _run(what, fn) {
    const run = () =>
      new Promise((resolve) => {
        const t = this.clock.setTimeout(() => {
          this.log(`group: ${what} timed out`);
          resolve(null);
        }, OP_TIMEOUT_MS);
        Promise.resolve()
          .then(fn)
          .then(
            (v) => {
              this.clock.clearTimeout(t);
              resolve(v);
            },
            (e) => {
              this.clock.clearTimeout(t);
              this.log(`group: ${what} failed: ${e && e.message}`);
              resolve(null);
            },
          );
      });
    const p = this._tail.then(run);
    this._tail = p;
    return p;
  }

  /**
   * Put a tab in its holder's group. Resolves to the group the tab was in
   * before (NO_GROUP if none), or null when nothing was done.
   */
  join(tabId, instanceId) {
    return this._run(`join tab ${tabId}`, async () => {
      const who = this.identity(instanceId);
      if (!who) return null;
      const tab = await this.api.tabs.get(tabId);
      const win = await this.api.windows.get(tab.windowId);
      if (win && win.type && win.type !== 'normal') return null; // groups exist only in normal windows
      const before = typeof tab.groupId === 'number' ? tab.groupId : NO_GROUP;
      if (!this.origin.has(tabId)) this.origin.set(tabId, before);
      const groupId = await this._findGroup(tab.windowId, who);
      if (groupId != null && before === groupId) return before;
      if (groupId != null) {
        await this.api.tabs.group({ tabIds: [tabId], groupId });
      } else {
        const gid = await this.api.tabs.group({ tabIds: [tabId], createProperties: { windowId: tab.windowId } });
        await this.api.tabGroups.update(gid, { title: who.label, color: who.color, collapsed: false });
      }
      return before;
    });
  }

  /** Take a tab out of its holder's group: back to its original group if it still exists, else ungrouped. */
  leave(tabId, origGroupId) {
    return this._run(`leave tab ${tabId}`, async () => {
      // The lock record's value wins; else what join saw (a release can be queued before join reported back).
      if (origGroupId == null) origGroupId = this.origin.get(tabId);
      this.origin.delete(tabId);
      const tab = await this.api.tabs.get(tabId);
      if (typeof tab.groupId !== 'number' || tab.groupId === NO_GROUP) return;
      if (origGroupId != null && origGroupId !== NO_GROUP && origGroupId !== tab.groupId) {
        try {
          const g = await this.api.tabGroups.get(origGroupId);
          if (g && g.windowId === tab.windowId) {
            await this.api.tabs.group({ tabIds: [tabId], groupId: origGroupId });
            return;
          }
        } catch {
          /* the original group is gone */
        }
      }
      if (origGroupId === tab.groupId) return; // never left it (grouping had failed)
      await this.api.tabs.ungroup([tabId]);
    });
  }

  /** Title and colour of every group holding the instance's tabs (after a rename). */
  repaint(instanceId, tabIds) {
    return this._run(`repaint ${instanceId}`, async () => {
      const who = this.identity(instanceId);
      if (!who) return;
      const seen = new Set();
      for (const tabId of tabIds) {
        let tab;
        try {
          tab = await this.api.tabs.get(tabId);
        } catch {
          continue;
        }
        if (typeof tab.groupId !== 'number' || tab.groupId === NO_GROUP || seen.has(tab.groupId)) continue;
        seen.add(tab.groupId);
        await this.api.tabGroups.update(tab.groupId, { title: who.label, color: who.color });
      }
    });
  }

  async _findGroup(windowId, who) {
    const groups = await this.api.tabGroups.query({ windowId, title: who.label });
    const g = groups.find((x) => x.color === who.color) || null;
    return g ? g.id : null;
  }
}

export { NO_GROUP };
