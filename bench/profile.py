#!/usr/bin/env python3
"""Where a big snapshot's time goes in tabmux: `perf record` on the tabmux process while
it snapshots a page (default: the 5,000-control page), on the direct link and on the
extension link, then the hottest symbols. Needs `perf` (linux-perf) and a release build.

    python3 bench/profile.py [--page big.html] [--rounds 3]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import setup  # noqa: E402

setup.ensure_python()

from lib import cdp, fixtures  # noqa: E402
from lib.mcpclient import stdio_session  # noqa: E402
from lib.servers import TABMUX  # noqa: E402
from run import free_range, tree_cpu  # noqa: E402


async def one(label, argv, env, url, rounds, ext_pid=None):
    data = os.path.join(fixtures.OUT, f"perf-{label}.data")
    async with stdio_session(argv, env) as (s, proc, *_):
        await s.initialize()
        await s.call_tool("browser_navigate", {"url": url}, read_timeout_seconds=120)
        await s.call_tool("browser_snapshot", {"maxChars": 0}, read_timeout_seconds=120)
        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(proc.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(0.5)
        c0, w0 = tree_cpu(proc.pid, ext_pid), time.perf_counter()
        for _ in range(rounds):
            await s.call_tool("browser_snapshot", {"maxChars": 0}, read_timeout_seconds=120)
        wall = (time.perf_counter() - w0) / rounds
        c1 = tree_cpu(proc.pid, ext_pid)
        perf.send_signal(2)
        perf.wait()
    print(f"\n== {label}: {wall * 1000:.0f} ms per snapshot; tabmux CPU {(c1[0] - c0[0]) / rounds * 1000:.0f} ms, "
          f"browser CPU {(c1[1] - c0[1]) / rounds * 1000:.0f} ms")
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "sym", "-g", "none"],
                         capture_output=True, text=True).stdout
    lines = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(lines[:20]))


async def main(args):
    fixtures.build_pages()
    fixtures.build_docs()
    srv = fixtures.Server()
    url = srv.url(args.page)
    await one("direct", [TABMUX, "--launch"], {}, url, args.rounds)
    first, last = free_range()
    state = tempfile.mkdtemp(prefix="tabmux-profile-")
    ext = await cdp.launch_with_extension(first, last, state)
    try:
        await one("extension", [TABMUX, "--ports", f"{first}-{last}", "--extension", "--extension-wait", "15"],
                  {"TABMUX_STATE_DIR": state}, url, args.rounds, ext.proc.pid)
    finally:
        await ext.close()
        srv.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--page", default="big.html")
    ap.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
