// Test helpers: a fake clock whose timers run only when the test advances time.

export class FakeClock {
  constructor(start = 1_000_000) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.t;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn, id });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  setInterval(fn, ms) {
    const id = this.nextId++;
    const step = Math.max(1, ms);
    const rec = { at: this.t + step, fn: () => { rec.at += step; this.timers.set(id, rec); fn(); }, id };
    this.timers.set(id, rec);
    return id;
  }

  clearInterval(id) {
    this.timers.delete(id);
  }

  pending() {
    return this.timers.size;
  }

  /** Move time forward by ms, running due timers in order, letting promises settle between them. */
  async advance(ms) {
    const end = this.t + ms;
    await flush();
    for (;;) {
      let next = null;
      for (const t of this.timers.values()) if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      if (!next) break;
      this.timers.delete(next.id);
      this.t = Math.max(this.t, next.at);
      next.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

/** Let pending promise callbacks run. */
export async function flush() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** Track a promise's outcome without awaiting it. */
export function track(p) {
  const s = { state: 'pending', value: undefined, error: undefined };
  p.then((v) => { s.state = 'resolved'; s.value = v; }, (e) => { s.state = 'rejected'; s.error = e; });
  return s;
}
