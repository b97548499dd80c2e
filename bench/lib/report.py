"""Renders bench/out/results.json (and soak.json) as docs/BENCHMARKS.md."""

import json
import os
import platform
import statistics

from .fixtures import OUT

DIRECT, EXT, PW, CDT = "tabmux (direct)", "tabmux (extension)", "Playwright MCP", "chrome-devtools-mcp"
ORDER = [DIRECT, EXT, PW, CDT]
PEERS = [PW, CDT]
PAGE_TITLES = {
    "form": "small form",
    "big": "5,000 controls (1,000 rows × 5)",
    "article": "long article",
    "frames": "iframes (same-site + cross-site)",
    "docs": "rustdoc page (clap `Command`)",
    "vec": "std `Vec` rustdoc page",
    "book": "Rust book print page",
}


def med(xs):
    xs = [x for x in (xs or []) if x is not None]
    return statistics.median(xs) if xs else None


def f_ms(s):
    return "–" if s is None else (f"{s * 1000:.0f} ms" if s >= 0.1 else f"{s * 1000:.1f} ms")


def f_n(n):
    return "–" if n is None else f"{n:,.0f}"


def f_mb(kb):
    return "–" if not kb else f"{kb / 1024:.1f} MB"


def ratio(ours, peers):
    peers = [p for p in peers if p]
    if ours is None or not peers:
        return None
    return ours / min(peers)


def f_r(r):
    return "–" if r is None else f"{r:.2f}×"


class Table:
    def __init__(self, head):
        self.rows = [head]

    def add(self, *cells):
        self.rows.append([str(c) for c in cells])

    def md(self):
        out = ["| " + " | ".join(self.rows[0]) + " |", "|" + "---|" * len(self.rows[0])]
        out += ["| " + " | ".join(r) + " |" for r in self.rows[1:]]
        return "\n".join(out)


def write(res, path):
    S = res["servers"]
    ok = {k: v for k, v in S.items() if "failed" not in v}
    present = [k for k in ORDER if k in ok]

    def get(label, fn):
        v = ok.get(label)
        if v is None:
            return None
        try:
            return fn(v)
        except (KeyError, TypeError):
            return None

    def row_vals(fn):
        return {k: get(k, fn) for k in ORDER}

    def peer_best(vals):
        return [vals.get(p) for p in PEERS if vals.get(p)]

    targets = []
    L = []
    L.append("# Benchmarks\n")
    L.append("tabmux beside [Playwright MCP](https://github.com/microsoft/playwright-mcp) and "
             "[chrome-devtools-mcp](https://github.com/ChromeDevTools/chrome-devtools-mcp), driving the same "
             "Chromium through the same MCP client in one run. Regenerate this page with `bench/run` "
             "(raw numbers: `bench/out/results.json`; snapshots: `bench/out/snapshots/`).\n")
    L.append(f"- Run: {res.get('started')} → {res.get('finished')}; {platform.machine()}, "
             f"{os.cpu_count()} cores (shared with other work: compare within a run, as ratios); {res.get('chromium', '?')}, headless.")
    L.append("- Peers: `@playwright/mcp` 0.0.83 (`--headless --executable-path /usr/bin/chromium --no-sandbox --isolated`), "
             "`chrome-devtools-mcp` 1.11.0 (`--headless --isolated --executablePath /usr/bin/chromium --chromeArg=--no-sandbox`). "
             "tabmux release build, default 2 worker threads: `tabmux --launch` (direct link) and `tabmux --ports A-B` "
             "with the extension loaded in a headless Chromium (extension link).")
    L.append("- Client: the Python `mcp` package's `ClientSession` on a stdio pipe. Times are medians of wall-clock time from "
             "sending the request to receiving the answer. Sizes are characters of the text the model receives.")
    L.append(f"- Tokens: {res.get('tokenizer')}.")
    L.append("- Ratio: tabmux ÷ the better peer on that measure (lower is better); `ext` is the extension link.\n")

    # --- startup, tools ------------------------------------------------------------
    L.append("## Startup and tool list\n")
    t = Table(["measure"] + present + ["ratio (direct)", "ratio (ext)"])
    v = row_vals(lambda r: med(r["spawn_init_s"]))
    t.add("spawn → `initialize` answered", *[f_ms(v[k]) for k in present], f_r(ratio(v[DIRECT], peer_best(v))), f_r(ratio(v[EXT], peer_best(v))))
    targets.append(("spawn → initialize ≤ 0.1×", ratio(v[DIRECT], peer_best(v)), 0.1))
    tc = row_vals(lambda r: r["tools"]["count"])
    t.add("tools", *[f_n(tc[k]) for k in present], "", "")
    ch = row_vals(lambda r: r["tools"]["chars"])
    tk = row_vals(lambda r: r["tools"]["tokens"])
    t.add("`tools/list` characters", *[f_n(ch[k]) for k in present], f_r(ratio(ch[DIRECT], [ch[PW]])) + " of Playwright's", "")
    t.add("`tools/list` tokens", *[f_n(tk[k]) for k in present], f_r(ratio(tk[DIRECT], [tk[PW]])) + " of Playwright's", "")
    targets.append(("tools/list ≤ 0.6× of Playwright MCP's (tokens)", ratio(tk[DIRECT], [tk[PW]]), 0.6))
    L.append(t.md())
    L.append("\n`tools/list` size: the `tools` array re-serialized as compact JSON (what a client forwards to the model: names, "
             "descriptions, input schemas, annotations); byte counts on the wire differ only by whitespace.\n")

    # --- memory --------------------------------------------------------------------
    L.append("## Server memory\n")
    t = Table(["measure"] + present + ["ratio (direct)", "ratio (ext)"])
    for key, name in (("rss_idle_kb", "RSS idle (after `initialize`, `tools/list`)"), ("rss_after_200_kb", "RSS after 200 tool calls")):
        v = row_vals(lambda r, key=key: r[key])
        t.add(name, *[f_mb(v[k]) for k in present], f_r(ratio(v[DIRECT], peer_best(v))), f_r(ratio(v[EXT], peer_best(v))))
        targets.append((f"{name.split(' (')[0]} ≤ 0.1×", ratio(v[DIRECT], peer_best(v)), 0.1))
    L.append(t.md())
    L.append("\nVmRSS from `/proc/<pid>/status` of the server process (tabmux, or the peer's node process and any node "
             "children). The browser's own memory is separate and counted for no one. The 200 calls are 50 × "
             "(snapshot, click, type, evaluate) on the small form.\n")

    # --- actions -------------------------------------------------------------------
    L.append("## Actions on the small form\n")
    t = Table(["measure"] + present + ["ratio (direct)", "ratio (ext)"])
    rows = [
        ("navigate + snapshot in hand", lambda r: med(r["nav_snapshot_form_s"]), f_ms),
        ("snapshot", lambda r: med(r["action_s"]["snapshot"]), f_ms),
        ("click", lambda r: med(r["action_s"]["click"]), f_ms),
        ("click answer, characters", lambda r: r["action_chars"]["click"], f_n),
        ("type", lambda r: med(r["action_s"]["type"]), f_ms),
        ("type answer, characters", lambda r: r["action_chars"]["type"], f_n),
        ("screenshot (viewport PNG)", lambda r: med(r["screenshot_s"]), f_ms),
        ("evaluate `() => 1`", lambda r: med(r["evaluate_loop_s"]), f_ms),
    ]
    for name, fn, fmt in rows:
        v = row_vals(fn)
        t.add(name, *[fmt(v[k]) for k in present], f_r(ratio(v[DIRECT], peer_best(v))), f_r(ratio(v[EXT], peer_best(v))))
    L.append(t.md())
    L.append("\n\"Navigate + snapshot in hand\" is what a model needs to see a new page: tabmux's `browser_navigate` answers "
             "with the snapshot; Playwright MCP 0.0.83's `browser_navigate` writes its snapshot to a file, and "
             "chrome-devtools-mcp's `navigate_page` returns none, so for both it is the navigation plus `browser_snapshot` / "
             "`take_snapshot`. A click or type answer is the tool's whole text answer (tabmux: what changed on the page; "
             "Playwright: code, page state and snapshot changes; chrome-devtools-mcp: a one-line confirmation without "
             "any page state unless `includeSnapshot` is set), so the ratios on answer sizes compare unlike answers. "
             "tabmux's navigate answer carries at most 30,000 characters of snapshot (then a cut marker); on the big pages "
             "compare the snapshot rows below.\n")
    ex = ok.get(DIRECT, {}).get("click_response_example")
    if ex:
        L.append("tabmux's answer to the click:\n\n```\n" + ex.strip() + "\n```\n")

    # --- snapshots -----------------------------------------------------------------
    L.append("## Snapshots\n")
    L.append("Characters of the full snapshot answer (tokens in parentheses). tabmux is asked for the whole page "
             "(`maxChars: 0`); its default answer is bounded by a 50,000-character budget with a cut marker, shown "
             "in the last column. Peers have no budget.\n")
    t = Table(["page", "page text"] + present + ["ratio (direct)", "tabmux default answer"])
    ptext = res.get("page_text_chars", {})
    for key, title in PAGE_TITLES.items():
        c = row_vals(lambda r, key=key: r["pages"][key]["chars"])
        tk = row_vals(lambda r, key=key: r["pages"][key]["tokens"])
        d = get(DIRECT, lambda r, key=key: r["pages"][key]["default_chars"])
        cut = get(DIRECT, lambda r, key=key: r["pages"][key]["default_truncated"])
        t.add(title, f_n(ptext.get(key)), *[f"{f_n(c[k])} ({f_n(tk[k])})" for k in present], f_r(ratio(c[DIRECT], peer_best(c))),
              f_n(d) + (" (cut)" if cut else ""))
        targets.append((f"snapshot characters ≤ 0.5×: {title}", ratio(c[DIRECT], peer_best(c)), 0.5))
    L.append(t.md())
    L.append("\n\"Page text\" is the visible text of the page's documents (`innerText`), for scale: a snapshot of a "
             "text-heavy page cannot be much smaller than its text.\n")
    L.append("\n### Snapshot time\n")
    L.append("`browser_snapshot` / `take_snapshot` on the loaded page (tabmux: full page, `maxChars: 0`), and navigate + "
             "snapshot in hand as above.\n")
    t = Table(["page", "measure"] + present + ["ratio (direct)", "ratio (ext)"])
    for key, title in PAGE_TITLES.items():
        for m, name in (("snapshot_s", "snapshot"), ("nav_snapshot_s", "navigate + snapshot")):
            v = row_vals(lambda r, key=key, m=m: med(r["pages"][key][m]))
            t.add(title, name, *[f_ms(v[k]) for k in present], f_r(ratio(v[DIRECT], peer_best(v))), f_r(ratio(v[EXT], peer_best(v))))
            if key in ("big", "docs") and m == "snapshot_s":
                targets.append((f"snapshot time ≤ 0.3×: {title}", ratio(v[DIRECT], peer_best(v)), 0.3))
    L.append(t.md())

    L.append("\nWhere the time of one snapshot goes: wall time, CPU time of the server's own processes, and CPU time "
             "of the browser's processes (for the extension link: the whole browser, extension included), per snapshot, "
             "over the same calls.\n")
    t = Table(["page", "server"] + ["wall", "server CPU", "browser CPU"])
    for key in ("big", "docs", "article"):
        for k in present:
            p = get(k, lambda r, key=key: r["pages"][key])
            if not p or "snapshot_cpu_s" not in p:
                continue
            t.add(PAGE_TITLES[key], k, f_ms(med(p["snapshot_s"])), f_ms(p["snapshot_cpu_s"]["server"]), f_ms(p["snapshot_cpu_s"]["browser"]))
    L.append(t.md())
    L.append("\n### Completeness\n")
    inv = res.get("inventory", {})
    L.append("A script in each document of the page (`bench/lib/inventory.js`; iframes from their own documents) lists "
             "the visible interactive elements (links, buttons, inputs, selects, textareas, summaries, contenteditable, "
             "interactive ARIA roles, `[tabindex]`) and headings (`h1`–`h6`, `role=heading`). Each must appear in the "
             "snapshot by name (whitespace and case ignored), an interactive one on a line with a ref, in document "
             "order (`bench/lib/completeness.py`). found / total:\n")
    t = Table(["page", "DOM: interactive + headings"] + present)
    for key, title in PAGE_TITLES.items():
        i = inv.get(key, {})
        t.add(title, f"{i.get('interactive', '?')} + {i.get('heading', '?')}",
              *[f"{get(k, lambda r, key=key: r['pages'][key]['found'])} / {get(k, lambda r, key=key: r['pages'][key]['total'])}" for k in present])
    L.append(t.md())
    miss = []
    for k in present:
        for key in PAGE_TITLES:
            p = get(k, lambda r, key=key: r["pages"][key])
            if not p:
                continue
            for kind in ("interactive", "heading"):
                for m in p["complete"][kind]["missing"][:8]:
                    miss.append(f"- {k}, {PAGE_TITLES[key]}: {kind} `<{m['tag']}{' role=' + m['role'] if m.get('role') else ''}>` "
                                f"named {json.dumps((m['names'] or [''])[0][:60])}")
    focus = []
    for k in present:
        f = [(key, get(k, lambda r, key=key: r["pages"][key]["complete"].get("focus"))) for key in PAGE_TITLES]
        f = [(key, x) for key, x in f if x and x["total"]]
        if f:
            focus.append(f"{k} " + ", ".join(f"{PAGE_TITLES[key]} {x['found']}/{x['total']}" for key, x in f))
    if focus:
        L.append("\nNot counted above: containers with `tabindex=-1` and no widget role (focus targets for scripts and "
                 "skip links, e.g. rustdoc's `#main-content`), found with a ref: " + "; ".join(focus) + ".")
    if miss:
        L.append("\nNot found (first few per page):\n")
        L += miss
    L.append("")

    # --- extension link --------------------------------------------------------------
    if "discovery" in res or "cdp_level" in res:
        L.append("## Extension link\n")
        t = Table(["measure", "median", "notes"])
        d, e = ok.get(DIRECT), ok.get(EXT)
        if d and e:
            dm, em = med(d["evaluate_loop_s"]), med(e["evaluate_loop_s"])
            t.add(f"`browser_evaluate` round trip, direct link ({len(d['evaluate_loop_s'])} calls)", f_ms(dm), "end to end through MCP")
            t.add(f"`browser_evaluate` round trip, extension link ({len(e['evaluate_loop_s'])} calls)", f_ms(em), "end to end through MCP")
            t.add("relay overhead per command (extension − direct)", f_ms(em - dm), "one `Runtime.evaluate` per call")
            targets.append(("relay overhead ≤ 1 ms", (em - dm) * 1000, 1.0))
        c = res.get("cdp_level")
        if c:
            pm, wm = med(c["pipe_s"]), med(c["chrome_debugger_s"])
            t.add(f"`Runtime.evaluate` over a CDP pipe ({len(c['pipe_s'])} calls)", f_ms(pm), "bench → browser endpoint, no MCP")
            t.add(f"`Runtime.evaluate` by `chrome.debugger` in the worker ({len(c['chrome_debugger_s'])} calls)", f_ms(wm), "the relay's last leg")
        dsc = res.get("discovery")
        if dsc:
            t.add(f"discovery, first port ({dsc['first_port']})", f_ms(med(dsc["first_s"])),
                  f"tabmux start → extension connected; max {f_ms(max(dsc['first_s']))} of {len(dsc['first_s'])}")
            t.add(f"discovery, last port ({dsc['last_port']}, 10 instances running)", f_ms(med(dsc["last_s"])),
                  f"range {dsc['range'][0]}–{dsc['range'][1]}; max {f_ms(max(dsc['last_s']))} of {len(dsc['last_s'])}")
            targets.append(("discovery ≤ 1 s (first port)", med(dsc["first_s"]), 1.0))
            targets.append(("discovery ≤ 1 s (last port)", med(dsc["last_s"]), 1.0))
        for key, name in (("worker_mem_start", "extension worker JS heap, start"), ("worker_mem_after_suite", "… after the single-client runs"),
                          ("worker_mem_end", "… at the end")):
            m = res.get(key)
            if m:
                t.add(name, f"{m['used'] / 1048576:.1f} MB used", f"of {m['total'] / 1048576:.1f} MB (`Runtime.getHeapUsage` after GC)")
        lk = res.get("locks")
        if lk:
            t.add("lock hand-over: release → waiter's claim answered", f_ms(med(lk["handover_claim_s"])), f"{len(lk['handover_claim_s'])} hand-overs, two instances")
            t.add("lock hand-over: release → waiter's next command done", f_ms(med(lk["handover_next_s"])), "claim answer + one `browser_evaluate`")
            t.add("killed holder (SIGKILL) → waiter granted and ran", f_ms(med(lk["kill_recover_s"])), f"grace period {lk['grace_s']} s included")
        L.append(t.md())
        L.append("")

    # --- soak -----------------------------------------------------------------------
    soak_path = os.path.join(OUT, "soak.json")
    if os.path.exists(soak_path):
        with open(soak_path) as f:
            sk = json.load(f)
        L.append("## Soak (`bench/soak`)\n")
        L.append(f"{sk['instances']} tabmux instances on one extension, random tool calls on their own tabs for "
                 f"{sk['seconds']:.0f} s ({sk.get('when', '')}).\n")
        t = Table(["measure", "value"])
        t.add("tool calls answered", f_n(sk["calls"]))
        t.add("by tool", ", ".join(f"{k} {v}" for k, v in sorted(sk["by_tool"].items())))
        t.add("cross-talk (another instance's page or tab seen)", f_n(sk["crosstalk"]))
        t.add("lost or unanswered calls", f_n(sk["lost"]))
        t.add("tool errors", f_n(sk["errors"]) + (f" ({'; '.join(sk['error_samples'][:3])})" if sk["errors"] else ""))
        t.add("median / p99 call time", f"{f_ms(sk['median_s'])} / {f_ms(sk['p99_s'])}")
        t.add(f"extension worker JS heap: start → {sk['instances']} connected → end (after the instances left)",
              f"{sk['mem_start']['used'] / 1048576:.1f} MB → {sk['mem_ready']['used'] / 1048576:.1f} MB → {sk['mem_end']['used'] / 1048576:.1f} MB")
        t.add("tabs open after the instances left (grace period over)", f_n(sk.get("tabs_left_after")) + " (the browser's own first tab)")
        L.append(t.md())
        L.append("")

    # --- targets ----------------------------------------------------------------------
    L.append("## Targets\n")
    t = Table(["target", "measured", "result"])
    for name, val, lim in targets:
        if val is None:
            t.add(name, "–", "not measured")
            continue
        if "discovery" in name:
            shown = f"{val * 1000:.0f} ms"
        elif "overhead" in name:
            shown = f"{val:.2f} ms"
        else:
            shown = f"{val:.2f}×"
        val_cmp = val
        t.add(name, shown, "met" if val_cmp <= lim else "**missed**")
    L.append(t.md())
    L.append("")
    notes = os.path.join(os.path.dirname(OUT), "analysis.md")
    if os.path.exists(notes):
        with open(notes) as f:
            L.append(f.read())
    with open(path, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
