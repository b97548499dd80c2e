#!/usr/bin/env python3
"""tabmux beside Playwright MCP and chrome-devtools-mcp, on the same Chromium, through one
MCP client, in one run. Writes bench/out/results.json and docs/BENCHMARKS.md.

    bench/run            # everything (~10 minutes on 2 cores)
    bench/run --quick    # fewer repetitions, for trying the bench itself
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import setup  # noqa: E402

setup.ensure_python()
setup.ensure_peers()

from lib import cdp, completeness, fixtures, report  # noqa: E402
from lib.mcpclient import rss_kb, status_kb, stdio_session, stop_process, text_of  # noqa: E402
from lib.servers import DevtoolsMcp, Playwright, Tabmux, ToolError  # noqa: E402

OUT = fixtures.OUT
log = setup.log

PAGES = [
    # (key, title, path, documents whose DOM inventory the snapshot must cover)
    ("form", "small form", "form.html", ["form.html"]),
    ("big", "5,000 controls (1,000 rows x 5)", "big.html", ["big.html"]),
    ("article", "long article", "article.html", ["article.html"]),
    ("frames", "iframes (same-site + cross-site)", "frames.html",
     ["frames.html", "frame-address.html", "@localhost/frame-payment.html", "@localhost/frame-help.html"]),
    ("docs", "rustdoc page (clap Command)", "doc/" + fixtures.DOC_PAGE, ["doc/" + fixtures.DOC_PAGE]),
    ("vec", "std Vec rustdoc page", "rust/std/vec/struct.Vec.html", ["rust/std/vec/struct.Vec.html"]),
    ("book", "Rust book print page", "rust/book/print.html", ["rust/book/print.html"]),
]
HEAVY = ("big", "docs", "vec", "book")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ms(xs):
    m = med(xs)
    return None if m is None else round(m * 1000, 2)


def free_range(n=11):
    # Above the blocks the Rust tests pick (33000-52200), which may run beside the bench.
    for first in range(56000, 64000, 64):
        ok = True
        for p in range(first, first + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return first, first + n - 1
    raise SystemExit("no free block of ports")


def _proc_table():
    """pid -> (ppid, comm, cpu seconds) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # By executable: chrome-devtools-mcp's node process names itself "chrome-devtools".
        try:
            exe = os.path.basename(os.readlink(f"/proc/{d}/exe"))
        except OSError:
            exe = st[st.index("(") + 1: st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[int(d)] = (int(f[1]), exe, (int(f[11]) + int(f[12])) / tick)
    return out


def tree_cpu(pid, extra_browser=None):
    """CPU seconds used so far by a server's own processes and by browser processes
    (its descendants named chrom*, plus the tree of `extra_browser`)."""
    t = _proc_table()
    kids = {}
    for p, (pp, _, _) in t.items():
        kids.setdefault(pp, []).append(p)
    server = browser = 0.0
    todo = [(pid, False)] + ([(extra_browser, True)] if extra_browser else [])
    while todo:
        p, in_browser = todo.pop()
        if p not in t:
            continue
        is_browser = in_browser or t[p][1].lower().startswith(("chrom", "headless_shell"))
        if is_browser:
            browser += t[p][2]
        else:
            server += t[p][2]
        todo += [(c, is_browser) for c in kids.get(p, [])]
    return server, browser


def reset_peak(pid):
    """Resets the process's peak RSS (VmHWM) to its current RSS (Linux: clear_refs 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_kb(pid):
    """VmHWM of one process, in KiB: its peak RSS since start or the last reset_peak."""
    return status_kb(pid, "VmHWM")


def tree_rss_kb(pid):
    """VmRSS of the server process and its non-browser descendants (node workers)."""
    kids = {}
    for p, (pp, name, _) in _proc_table().items():
        kids.setdefault(pp, []).append((p, name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss_kb(p) or 0
        for c, name in kids.get(p, []):
            if "chrom" not in name.lower():
                todo.append(c)
    return total


class Bench:
    def __init__(self, args):
        self.args = args
        self.reps = 5 if args.quick else 15
        self.tok = setup.Tokenizer()
        self.results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "servers": {}, "tokenizer": self.tok.name}
        self.inventory = {}
        self.page_text = {}
        self.srv = None
        self.ext = None
        self.ports = None
        self.state_dir = tempfile.mkdtemp(prefix="tabmux-bench-state-")
        self.workdir = tempfile.mkdtemp(prefix="tabmux-bench-cwd-")
        self.logs = os.path.join(OUT, "logs")
        os.makedirs(self.logs, exist_ok=True)

    def adapters(self):
        a, b = self.ports
        # --extension: an instance that does not find the bench's browser fails instead of
        # launching a browser of its own (its numbers would not be the bench browser's).
        ext_args = ("--ports", f"{a}-{b}", "--extension", "--extension-wait", "15")
        return [
            Tabmux("tabmux (direct)", ("--launch",)),
            Tabmux("tabmux (extension)", ext_args, {"TABMUX_STATE_DIR": self.state_dir}),
            Playwright(self.workdir),
            DevtoolsMcp(),
        ] + ([
            # The accessibility tree as the snapshot source: how tabmux worked before its
            # in-page collector.
            Tabmux("tabmux ax (direct)", ("--launch",), source="ax"),
            Tabmux("tabmux ax (extension)", ext_args, {"TABMUX_STATE_DIR": self.state_dir}, source="ax"),
        ] if self.args.ax else [])

    # --- setup ---------------------------------------------------------------------

    async def take_inventory(self, browser):
        js = open(os.path.join(fixtures.BENCH, "lib", "inventory.js")).read()
        for key, _, _, docs in self.pages():
            items = []
            text_len = 0
            for d in docs:
                host = "127.0.0.1"
                if d.startswith("@localhost/"):
                    host, d = "localhost", d[len("@localhost/"):]
                tid, s = await browser.open_page(self.srv.url(d, host))
                items += await browser.evaluate(s, js)
                text_len += await browser.evaluate(s, "document.body.innerText.length")
                await browser.close_target(tid)
            self.inventory[key] = items
            self.page_text[key] = text_len
        self.results["page_text_chars"] = self.page_text
        with open(os.path.join(OUT, "inventory.json"), "w") as f:
            json.dump(self.inventory, f)
        self.results["inventory"] = {
            k: {"interactive": sum(1 for i in v if i["kind"] == "interactive"), "heading": sum(1 for i in v if i["kind"] == "heading")}
            for k, v in self.inventory.items()
        }

    # --- one server, one client ----------------------------------------------------

    def stderr_file(self, label):
        name = label.replace(" ", "_").replace("(", "").replace(")", "")
        return open(os.path.join(self.logs, f"{name}.log"), "a")

    async def spawn_times(self, ad, n):
        out = []
        for _ in range(n):
            with self.stderr_file(ad.label) as err:
                async with stdio_session(ad.argv(), ad.env(), stderr=err, cwd=self.workdir) as (s, proc, wire, t0):
                    await s.initialize()
                    out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.2)
        return out

    async def run_server(self, ad):
        log(f"== {ad.label}")
        r = {"label": ad.label, "kind": ad.kind}
        r["spawn_init_s"] = await self.spawn_times(ad, 3 if self.args.quick else 7)
        with self.stderr_file(ad.label) as err:
            async with stdio_session(ad.argv(), ad.env(), stderr=err, cwd=self.workdir) as (s, proc, wire, t0):
                ad.session = s
                self.pid = proc.pid
                await s.initialize()
                tl = await s.list_tools()
                tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tl.tools]
                compact = json.dumps({"tools": tools}, separators=(",", ":"), ensure_ascii=False)
                r["tools"] = {"count": len(tools), "wire_chars": wire.last_size, "chars": len(compact), "tokens": self.tok.count(compact)}
                await asyncio.sleep(1.0)
                r["rss_idle_kb"] = tree_rss_kb(proc.pid)
                await ad.setup()
                await self.actions(ad, r)
                r["rss_after_200_kb"] = tree_rss_kb(proc.pid)
                await self.page_set(ad, r)
                # Back on a small page: what the big pages left behind.
                await ad.navigate_snapshot(self.srv.url("form.html"))
                await asyncio.sleep(0.5)
                r["rss_small_after_kb"] = tree_rss_kb(proc.pid)
                await self.evaluate_loop(ad, r)
                r["rss_end_kb"] = tree_rss_kb(proc.pid)
                ad.session = None
        return r

    async def actions(self, ad, r):
        """The 200 calls: 50 x (snapshot, click, type, evaluate) on the form page."""
        form = self.srv.url("form.html")
        await ad.navigate(form)
        t = {"snapshot": [], "click": [], "type": [], "evaluate": []}
        sizes = {"click": [], "type": [], "snapshot": []}
        for i in range(50):
            snap, dt = await ad.snapshot()
            t["snapshot"].append(dt)
            sizes["snapshot"].append(len(snap))
            save = ad.ref_of(snap, "button", "Save draft")
            name = ad.ref_of(snap, "textbox", "Full name *")
            txt, dt = await ad.click(save)
            t["click"].append(dt)
            sizes["click"].append(len(txt))
            if i == 0:
                r["click_response_example"] = txt
            txt, dt = await ad.type(name, f"Ada {i}")
            t["type"].append(dt)
            sizes["type"].append(len(txt))
            if i == 0:
                r["type_response_example"] = txt
            _, dt = await ad.evaluate("() => document.title")
            t["evaluate"].append(dt)
        r["action_s"] = t
        r["action_chars"] = {k: med(v) for k, v in sizes.items()}
        shots = []
        for _ in range(self.reps):
            res, dt = await ad.screenshot()
            shots.append(dt)
        r["screenshot_s"] = shots
        navs = []
        for i in range(self.reps):
            _, dt = await ad.navigate_snapshot(form)
            navs.append(dt)
        r["nav_snapshot_form_s"] = navs

    async def page_set(self, ad, r):
        snapdir = os.path.join(OUT, "snapshots", ad.label.replace(" ", "_").replace("(", "").replace(")", ""))
        os.makedirs(snapdir, exist_ok=True)
        r["pages"] = {}
        for key, _, path, _ in self.pages():
            heavy = key in HEAVY
            n = 3 if heavy else 5
            if self.args.quick:
                n = 2 if heavy else 3
            url = self.srv.url(path)
            p = {"nav_snapshot_s": [], "nav_s": [], "snapshot_s": []}
            reset_peak(self.pid)
            for _ in range(n):
                _, dt = await ad.navigate_snapshot(url)
                p["nav_snapshot_s"].append(dt)
            for _ in range(n):
                _, dt = await ad.navigate(url)
                p["nav_s"].append(dt)
            c0 = tree_cpu(self.pid, self.ext.proc.pid if ad.label.endswith("(extension)") else None)
            for _ in range(n):
                snap, dt = await ad.snapshot()
                p["snapshot_s"].append(dt)
            c1 = tree_cpu(self.pid, self.ext.proc.pid if ad.label.endswith("(extension)") else None)
            p["snapshot_cpu_s"] = {"server": (c1[0] - c0[0]) / n, "browser": (c1[1] - c0[1]) / n}
            p["rss_peak_kb"] = peak_kb(self.pid)
            p["rss_kb"] = tree_rss_kb(self.pid)
            p["chars"] = len(snap)
            p["tokens"] = self.tok.count(snap)
            with open(os.path.join(snapdir, f"{key}.txt"), "w") as f:
                f.write(snap)
            if ad.kind == "tabmux":
                d, _ = await ad.snapshot(full=False)
                p["default_chars"] = len(d)
                p["default_truncated"] = "cut:" in d[-400:]
            c = completeness.check(ad.kind, snap, self.inventory[key])
            p["complete"] = {
                k: {"found": c[k]["found"], "total": c[k]["total"], "missing": c[k]["missing"][:50]}
                for k in ("interactive", "heading", "focus")
            }
            p["found"], p["total"] = c["found"], c["total"]
            log(f"  {key}: {p['chars']} chars, snapshot {ms(p['snapshot_s'])} ms, found {c['found']}/{c['total']}, "
                f"RSS peak {(p['rss_peak_kb'] or 0) / 1024:.1f} MB, after {(p['rss_kb'] or 0) / 1024:.1f} MB")
            r["pages"][key] = p

    def pages(self):
        keep = set(self.args.pages.split(",")) if self.args.pages else None
        return [p for p in PAGES if not keep or p[0] in keep]

    async def evaluate_loop(self, ad, r):
        n = self.args.evals if ad.kind == "tabmux" else max(50, self.args.evals // 5)
        await ad.navigate(self.srv.url("form.html"))
        xs = []
        for _ in range(n):
            _, dt = await ad.evaluate("() => 1")
            xs.append(dt)
        r["evaluate_loop_s"] = xs

    # --- extension link only -------------------------------------------------------

    def ext_env(self):
        return dict(os.environ, TABMUX_STATE_DIR=self.state_dir, TABMUX_LOG="info")

    async def spawn_raw(self, extra=()):
        a, b = self.ports
        return await asyncio.create_subprocess_exec(
            setup_tabmux(), "--ports", f"{a}-{b}", "--extension", *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.ext_env(), start_new_session=True)

    async def until_connected(self, proc, timeout=20):
        """Seconds until the instance logs the extension's connection; and its port."""
        t0 = time.perf_counter()
        port = None
        seen = []
        while True:
            line = await asyncio.wait_for(proc.stderr.readline(), timeout)
            if not line:
                raise RuntimeError(f"tabmux exited before the extension connected: {''.join(seen)[-600:]}")
            s = line.decode(errors="replace")
            seen.append(s)
            if "waiting for the tabmux extension" in s and "port=" in s:
                port = int(s.split("port=")[1].split()[0])
            if "browser connected" in s:
                return time.perf_counter() - t0, port

    async def discovery(self):
        """tabmux start -> extension connected, on the first and on the last port of the range."""
        n = 3 if self.args.quick else 5
        # Every instance started here is stopped, also when a step fails (a live instance
        # left behind would keep its port and the browser's attention).
        running = []

        async def spawn():
            p = await self.spawn_raw()
            running.append(p)
            return p

        async def stop(p):
            running.remove(p)
            await stop_process(p)

        async def once(pause):
            """One instance started until the extension connects; (seconds, port)."""
            p = await spawn()
            dt, port = await self.until_connected(p)
            await stop(p)
            await asyncio.sleep(pause)
            return dt, port

        try:
            first = [await once(0.5) for _ in range(n)]
            # Ten instances hold the first ten ports; the eleventh gets the last one.
            for _ in range(10):
                await self.until_connected(await spawn())
            last = [await once(1.5) for _ in range(n)]
        finally:
            for p in list(running):
                await stop(p)
        return {"first_s": [x for x, _ in first], "first_port": first[0][1],
                "last_s": [x for x, _ in last], "last_port": last[0][1], "range": list(self.ports)}

    async def tab_id_of(self, ad, marker):
        txt = text_of((await ad.call("browser_tabs", {"action": "list", "all": True}))[0])
        for line in txt.splitlines():
            if marker in line and "tabId" in line:
                return line.split("tabId ")[1].split(":")[0]
        raise RuntimeError(f"no tab {marker!r} in:\n{txt}")

    async def locks(self):
        """Hand-over latency between two instances, and recovery from a killed holder."""
        a, b = self.ports
        # The tab is one the bench opened as the user would: allowed without asking here
        # (the consent question is not what this part measures).
        args = ("--ports", f"{a}-{b}", "--extension", "--extension-wait", "15", "--user-tabs", "allow")
        env = {"TABMUX_STATE_DIR": self.state_dir}
        out = {"handover_claim_s": [], "handover_next_s": [], "release_s": []}
        tid, _ = await self.ext.open_page(self.srv.url("soak.html?who=user"))
        A, B = Tabmux("A", args, env), Tabmux("B", args, env)
        with self.stderr_file("locks") as err:
            async with stdio_session(A.argv(), A.env(), stderr=err, name="bench-A") as (sa, *_):
                async with stdio_session(B.argv(), B.env(), stderr=err, name="bench-B") as (sb, *_):
                    A.session, B.session = sa, sb
                    await sa.initialize()
                    await sb.initialize()
                    tab = await self.tab_id_of(A, "Soak user")
                    await A.call("browser_tabs", {"action": "claim", "tabId": tab, "timeout": 30})
                    holder, waiter = A, B
                    for _ in range(5 if self.args.quick else 15):
                        claim = asyncio.create_task(waiter.call("browser_tabs", {"action": "claim", "tabId": tab, "timeout": 30}))
                        await asyncio.sleep(0.3)  # the claim is queued
                        idx = await self.own_index(holder)
                        t0 = time.perf_counter()
                        _, rdt = await holder.call("browser_tabs", {"action": "release", "index": idx})
                        await claim
                        t1 = time.perf_counter()
                        await waiter.call("browser_evaluate", {"function": "() => document.title"})
                        t2 = time.perf_counter()
                        out["release_s"].append(rdt)
                        out["handover_claim_s"].append(t1 - t0)
                        out["handover_next_s"].append(t2 - t0)
                        holder, waiter = waiter, holder
                    idx = await self.own_index(holder)
                    await holder.call("browser_tabs", {"action": "release", "index": idx})
                    A.session = B.session = None
            # A killed holder: SIGKILL while B waits.
            out["kill_recover_s"] = []
            grace = 5
            for _ in range(2 if self.args.quick else 3):
                async with stdio_session(B.argv(), B.env(), stderr=err, name="bench-B") as (sb, *_):
                    B.session = sb
                    await sb.initialize()
                    async with stdio_session(A.argv(), A.env(), stderr=err, name="bench-A") as (sa, pa, *_):
                        A.session = sa
                        await sa.initialize()
                        await A.call("browser_tabs", {"action": "claim", "tabId": tab, "timeout": 30})
                        claim = asyncio.create_task(B.call("browser_tabs", {"action": "claim", "tabId": tab, "timeout": 60}))
                        await asyncio.sleep(0.3)
                        t0 = time.perf_counter()
                        os.kill(pa.pid, signal.SIGKILL)
                        await claim
                        await B.call("browser_evaluate", {"function": "() => document.title"})
                        out["kill_recover_s"].append(time.perf_counter() - t0)
                        A.session = None
                    idx = await self.own_index(B)
                    await B.call("browser_tabs", {"action": "release", "index": idx})
                    B.session = None
            out["grace_s"] = grace
        await self.ext.close_target(tid)
        return out

    async def own_index(self, ad):
        txt = text_of((await ad.call("browser_tabs", {"action": "list"}))[0])
        for line in txt.splitlines():
            if "Soak user" in line:
                return int(line.strip("- ").split(":")[0])
        raise RuntimeError(f"no own tab in:\n{txt}")

    async def cdp_level(self):
        """Runtime.evaluate at the CDP level: over the bench's own CDP pipe (browser
        endpoint, as tabmux's direct link talks), and through chrome.debugger inside the
        extension's service worker (the relay's last leg)."""
        n = self.args.evals
        url = self.srv.url("form.html?cdp-level")
        tid, s = await self.ext.open_page(url)
        pipe = []
        for _ in range(n):
            t = time.perf_counter()
            await self.ext.call("Runtime.evaluate", {"expression": "1", "returnByValue": True}, session=s)
            pipe.append(time.perf_counter() - t)
        await self.ext.call("Target.detachFromTarget", {"sessionId": s})
        tab = await self.ext.worker_eval(f"chrome.tabs.query({{}}).then(ts => ts.find(t => t.url === {json.dumps(url)}).id)")
        js = f"""(async () => {{
            const target = {{tabId: {tab}}};
            await chrome.debugger.attach(target, '1.3');
            const xs = [];
            for (let i = 0; i < {n}; i++) {{
                const t = performance.now();
                await chrome.debugger.sendCommand(target, 'Runtime.evaluate', {{expression: '1', returnByValue: true}});
                xs.push(performance.now() - t);
            }}
            await chrome.debugger.detach(target);
            return xs;
        }})()"""
        worker = [x / 1000 for x in await self.ext.worker_eval(js)]
        await self.ext.close_target(tid)
        return {"pipe_s": pipe, "chrome_debugger_s": worker}

    # --- the run -------------------------------------------------------------------

    def save(self):
        with open(os.path.join(OUT, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)

    async def main(self):
        fixtures.build_pages()
        if any(p[0] == "docs" for p in self.pages()):
            fixtures.build_docs(log)
        if not self.args.no_build:
            setup.build_tabmux()
        self.srv = fixtures.Server()
        self.ports = free_range()
        log(f"pages on {self.srv.url('')}; extension ports {self.ports[0]}-{self.ports[1]}")
        self.ext = await cdp.launch_with_extension(*self.ports, self.state_dir)
        try:
            await self.take_inventory(self.ext)
            self.results["chromium"] = (await self.ext.call("Browser.getVersion"))["product"]
            self.results["worker_mem_start"] = await self.ext.worker_memory()
            only = set(self.args.only.split(",")) if self.args.only else None
            for ad in self.adapters():
                if only and not any(o in ad.label.lower() for o in only):
                    continue
                try:
                    self.results["servers"][ad.label] = await self.run_server(ad)
                except Exception as e:  # one server failing must not hide the others
                    log(f"{ad.label} failed: {e!r}")
                    self.results["servers"][ad.label] = {"label": ad.label, "kind": ad.kind, "failed": repr(e)}
                self.save()
            if not only or "extension" in only or "ext-measures" in only:
                log("== extension link: discovery, relay, locks")
                for key, step in (("worker_mem_after_suite", self.ext.worker_memory), ("discovery", self.discovery),
                                  ("cdp_level", self.cdp_level), ("locks", self.locks),
                                  ("worker_mem_end", self.ext.worker_memory)):
                    try:
                        self.results[key] = await step()
                    except Exception as e:
                        log(f"{key} failed: {e!r}")
                        self.results[key + "_failed"] = repr(e)
                    self.save()
        finally:
            await self.ext.close()
            self.srv.close()
        self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self.save()
        if not self.args.no_report:
            report.write(self.results, os.path.join(fixtures.REPO, "docs", "BENCHMARKS.md"))
            log("wrote docs/BENCHMARKS.md and bench/out/results.json")


def setup_tabmux():
    from lib.servers import TABMUX

    return TABMUX


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--only", help="comma-separated label parts, e.g. 'direct,playwright'")
    ap.add_argument("--evals", type=int, default=1000, help="browser_evaluate round trips per tabmux link")
    ap.add_argument("--no-build", action="store_true", help="use the existing release build")
    ap.add_argument("--no-report", action="store_true", help="write results.json only")
    ap.add_argument("--pages", help="comma-separated page keys of the page set, e.g. 'big,vec,book'")
    ap.add_argument("--ax", action="store_true", help="also run tabmux with --snapshot-source ax")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    asyncio.run(Bench(args).main())


if __name__ == "__main__":
    main()
