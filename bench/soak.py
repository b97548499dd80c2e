#!/usr/bin/env python3
"""Soak: 11 tabmux instances share one browser (the extension link) and make random tool
calls on their own tabs for 5 minutes. Counts cross-talk (an instance seeing another
instance's page or tab: must be 0) and lost or unanswered calls (must be 0), and reads
the extension worker's memory at the start and the end. Writes bench/out/soak.json and
refreshes docs/BENCHMARKS.md from the last bench/run results.

    bench/soak                 # 11 instances, 300 s
    bench/soak --seconds 60    # shorter
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import setup  # noqa: E402

setup.ensure_python()

from lib import cdp, fixtures, report  # noqa: E402
from lib.mcpclient import stdio_session, text_of  # noqa: E402
from lib.servers import TABMUX  # noqa: E402

log = setup.log


class Stats:
    def __init__(self):
        self.calls = 0
        self.by_tool = {}
        self.times = []
        self.errors = 0
        self.error_samples = []
        self.lost = 0
        self.crosstalk = 0
        self.crosstalk_samples = []


async def instance(k, n, args, env, srv, stats, stop_box, ready, go):
    """One client: its own tab(s) on soak.html?who=<k>; random calls until stop_at."""
    me = f"i{k:02d}"
    others = [f"i{j:02d}" for j in range(n) if j != k]
    rng = random.Random(k)
    with open(os.path.join(fixtures.OUT, "logs", f"soak-{me}.log"), "w") as err:
        async with stdio_session([TABMUX, *args], env, stderr=err, name=f"soak-{me}") as (s, *_):
            await s.initialize()

            async def call(tool, a, timeout=60):
                t = time.perf_counter()
                try:
                    r = await asyncio.wait_for(s.call_tool(tool, a, read_timeout_seconds=timeout), timeout + 5)
                except (asyncio.TimeoutError, TimeoutError):
                    stats.lost += 1
                    return None
                except Exception as e:  # a protocol-level failure: the call is lost
                    stats.lost += 1
                    stats.error_samples.append(f"{me} {tool}: {e!r}"[:200])
                    return None
                stats.times.append(time.perf_counter() - t)
                stats.calls += 1
                stats.by_tool[tool] = stats.by_tool.get(tool, 0) + 1
                txt = text_of(r)
                if r.is_error:
                    stats.errors += 1
                    if len(stats.error_samples) < 20:
                        stats.error_samples.append(f"{me} {tool}: {txt[:160]}")
                for o in others:
                    if f"Owner {o}" in txt or f"Soak {o}" in txt or f"who={o}" in txt:
                        stats.crosstalk += 1
                        if len(stats.crosstalk_samples) < 10:
                            stats.crosstalk_samples.append(f"{me} {tool} saw {o}")
                        break
                return txt

            url = srv.url(f"soak.html?who={me}")
            await call("browser_navigate", {"url": url})
            ready.set()
            await go.wait()
            extra_tabs = 0
            while time.monotonic() < stop_box["at"]:
                op = rng.choices(
                    ["snapshot", "click", "type", "evaluate", "screenshot", "navigate", "list", "newtab"],
                    [5, 4, 3, 4, 1, 2, 2, 1],
                )[0]
                if op == "snapshot":
                    txt = await call("browser_snapshot", {})
                    if txt is not None and f"Owner {me}" not in txt and "Owner" in txt:
                        stats.crosstalk += 1
                elif op == "click":
                    await call("browser_click", {"target": "#b", "element": "Count button"})
                elif op == "type":
                    await call("browser_type", {"target": "#note", "element": "Note", "text": f"{me} {rng.randint(0, 999)}"})
                elif op == "evaluate":
                    txt = await call("browser_evaluate", {"function": "() => document.title"})
                    if txt is not None and f"Soak {me}" not in txt and "Soak" in txt:
                        stats.crosstalk += 1
                elif op == "screenshot":
                    await call("browser_take_screenshot", {"type": "jpeg", "quality": 50})
                elif op == "navigate":
                    await call("browser_navigate", {"url": url + f"&n={rng.randint(0, 9999)}"})
                elif op == "list":
                    await call("browser_tabs", {"action": "list"})
                elif op == "newtab":
                    if extra_tabs == 0:
                        await call("browser_tabs", {"action": "new", "url": url + "&tab=2"})
                        extra_tabs = 1
                    else:
                        await call("browser_tabs", {"action": "close", "index": 1})
                        await call("browser_tabs", {"action": "select", "index": 0})
                        extra_tabs = 0
                await asyncio.sleep(rng.uniform(0, 0.1))


async def main(args):
    fixtures.build_pages()
    srv = fixtures.Server()
    from run import free_range  # the same port-range helper

    first, last = free_range(args.instances)
    state = tempfile.mkdtemp(prefix="tabmux-soak-state-")
    os.makedirs(os.path.join(fixtures.OUT, "logs"), exist_ok=True)
    ext = await cdp.launch_with_extension(first, last, state)
    stats = Stats()
    try:
        mem_start = await ext.worker_memory()
        targs = ["--ports", f"{first}-{last}", "--extension", "--extension-wait", "15"]
        env = {"TABMUX_STATE_DIR": state}
        readies = [asyncio.Event() for _ in range(args.instances)]
        go = asyncio.Event()
        stop_box = {}

        async def run_one(k):
            await instance(k, args.instances, targs, env, srv, stats, stop_box, readies[k], go)

        # Start everyone, wait until each has its tab, then run for the given time.
        stop_box["at"] = time.monotonic() + 10_000
        tasks = [asyncio.create_task(run_one(k)) for k in range(args.instances)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        mem_ready = await ext.worker_memory()
        t0 = time.monotonic()
        stop_box["at"] = t0 + args.seconds
        go.set()
        log(f"soak: {args.instances} instances for {args.seconds} s")
        results = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - t0
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
        await asyncio.sleep(7)  # the extension's grace period, then cleanup
        mem_end = await ext.worker_memory()
        tabs_left = await ext.worker_eval("chrome.tabs.query({}).then(ts => ts.length)")
    finally:
        await ext.close()
        srv.close()
    times = sorted(stats.times)
    out = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "instances": args.instances,
        "seconds": elapsed,
        "calls": stats.calls,
        "by_tool": stats.by_tool,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "lost": stats.lost + len(failures),
        "instance_failures": failures,
        "crosstalk": stats.crosstalk,
        "crosstalk_samples": stats.crosstalk_samples,
        "median_s": statistics.median(times) if times else None,
        "p99_s": times[int(len(times) * 0.99)] if times else None,
        "mem_start": mem_start,
        "mem_ready": mem_ready,
        "mem_end": mem_end,
        "tabs_left_after": tabs_left,
    }
    with open(os.path.join(fixtures.OUT, "soak.json"), "w") as f:
        json.dump(out, f, indent=1)
    log(f"soak: {stats.calls} calls, {stats.errors} errors, {out['lost']} lost, {stats.crosstalk} cross-talk")
    res = os.path.join(fixtures.OUT, "results.json")
    if os.path.exists(res):
        with open(res) as f:
            report.write(json.load(f), os.path.join(fixtures.REPO, "docs", "BENCHMARKS.md"))
    ok = stats.crosstalk == 0 and out["lost"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=11)
    ap.add_argument("--seconds", type=float, default=300)
    asyncio.run(main(ap.parse_args()))
