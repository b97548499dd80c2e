#!/usr/bin/env python3
"""Where a snapshot's time goes in the browser, per page of the bench set: Chromium's
`Accessibility.getFullAXTree` over a CDP pipe and through `chrome.debugger` in the
extension's service worker (with the worker's own trimming and JSON work), beside one
in-page DOM walk (bench/lib/dom_walk.js), the cost floor of an injected-script collector.

Usage: bench/ax_cost.py [--runs N]   (pages and rustdoc output as bench/run makes them)
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.lib import fixtures  # noqa: E402
from bench.lib.cdp import launch_plain, launch_with_extension  # noqa: E402

PAGES = [
    ("5,000 controls", "big.html"),
    ("rustdoc page", "doc/" + fixtures.DOC_PAGE),
    ("long article", "article.html"),
]

WORKER_JS = """(async () => {
  const tab = (await chrome.tabs.query({})).find(t => (t.url || '').endsWith(%s));
  const target = {tabId: tab.id};
  await chrome.debugger.attach(target, '1.3');
  const out = [];
  try {
    for (let i = 0; i < %d; i++) {
      const t0 = performance.now();
      const r = await chrome.debugger.sendCommand(target, 'Accessibility.getFullAXTree', {});
      const t1 = performance.now();
      for (const n of r.nodes) {
        delete n.ignoredReasons; delete n.chromeRole;
        for (const k of ['name', 'description', 'value']) if (n[k] && typeof n[k] === 'object') delete n[k].sources;
      }
      const s = JSON.stringify(r);
      out.push([t1 - t0, performance.now() - t1, s.length, r.nodes.length]);
    }
  } finally {
    await chrome.debugger.detach(target);
  }
  return out;
})()"""


def med(xs):
    return statistics.median(xs)


async def pipe_costs(server, runs, walker):
    b = await launch_plain()
    rows = {}
    try:
        for label, path in PAGES:
            tid, s = await b.open_page(server.url(path))
            ax, size, nodes = [], 0, 0
            for _ in range(runs):
                t = time.perf_counter()
                raw = await b.call("Accessibility.getFullAXTree", {}, session=s, timeout=120)
                ax.append((time.perf_counter() - t) * 1000)
                nodes = len(raw["nodes"])
                size = len(json.dumps(raw, separators=(",", ":")))
            walks = [await b.evaluate(s, walker) for _ in range(runs + 1)]
            rows[label] = {
                "nodes": nodes,
                "ax_json_chars": size,
                "pipe_ms": med(ax),
                "walk_first_ms": walks[0][0],
                "walk_ms": med([w[0] for w in walks[1:]]),
                "walk_chars": walks[-1][1],
            }
            await b.close_target(tid)
    finally:
        await b.close()
    return rows


async def extension_costs(server, runs, rows):
    port = 20000 + os.getpid() % 20000
    b = await launch_with_extension(port, port)
    try:
        ws = await b.worker_session()
        for label, path in PAGES:
            tid, _ = await b.open_page(server.url(path))
            got = await b.evaluate(ws, WORKER_JS % (json.dumps(path), runs), timeout=300)
            rows[label]["debugger_ms"] = med([g[0] for g in got])
            rows[label]["worker_json_ms"] = med([g[1] for g in got])
            rows[label]["trimmed_chars"] = got[-1][2]
            await b.close_target(tid)
    finally:
        await b.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    fixtures.build_pages()
    fixtures.build_docs()
    walker = open(os.path.join(os.path.dirname(__file__), "lib", "dom_walk.js")).read()
    server = fixtures.Server()
    try:
        rows = await pipe_costs(server, args.runs, walker)
        await extension_costs(server, args.runs, rows)
    finally:
        server.close()
    print("| page | AX nodes | getFullAXTree, pipe | via chrome.debugger | worker trim + JSON | in-page DOM walk (first / warm) |")
    print("|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(
            f"| {label} | {r['nodes']:,} | {r['pipe_ms']:.0f} ms ({r['ax_json_chars'] / 1e6:.1f} MB) "
            f"| {r['debugger_ms']:.0f} ms | {r['worker_json_ms']:.0f} ms ({r['trimmed_chars'] / 1e6:.1f} MB) "
            f"| {r['walk_first_ms']:.0f} / {r['walk_ms']:.0f} ms |"
        )
    out = os.path.join(fixtures.OUT, "ax_cost.json")
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    asyncio.run(main())
