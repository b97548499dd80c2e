"""A small CDP client over --remote-debugging-pipe (no WebSocket library needed), and a
headless Chromium with the tabmux extension loaded, as the extension-link runs need."""

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time

from .fixtures import REPO

EXTENSION_ID = "knlmfncphidfkjhbiidejbkkebcfedhd"
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")


class CdpError(Exception):
    pass


class PipeBrowser:
    """Chromium driven through fds 3/4 (`--remote-debugging-pipe`)."""

    def __init__(self, args, profile):
        self.args = args
        self.profile = profile
        self.proc = None
        self.next_id = 0
        self.pending = {}
        self.listeners = []

    async def start(self):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()

        def fds():
            # Move both ends out of the way first, then into 3 and 4.
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--remote-debugging-pipe", *self.args],
            preexec_fn=fds,
            close_fds=False,  # fds 3 and 4 must survive; everything else is close-on-exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader(limit=512 * 1024 * 1024)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader), os.fdopen(from_child_r, "rb", 0))
        self.wfile = os.fdopen(to_child_w, "wb", 0)
        self.read_task = asyncio.create_task(self._read())
        await self.call("Browser.getVersion")
        return self

    async def _read(self):
        try:
            while True:
                raw = await self.reader.readuntil(b"\0")
                msg = json.loads(raw[:-1])
                if "id" in msg:
                    fut = self.pending.pop(msg["id"], None)
                    if fut and not fut.done():
                        if "error" in msg:
                            fut.set_exception(CdpError(f"{msg['error'].get('message')}"))
                        else:
                            fut.set_result(msg.get("result", {}))
                else:
                    for cb in list(self.listeners):
                        cb(msg)
        except (asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            for f in self.pending.values():
                if not f.done():
                    f.set_exception(CdpError("browser connection closed"))

    async def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        i = self.next_id
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        self.wfile.write(json.dumps(msg).encode() + b"\0")
        return await asyncio.wait_for(fut, timeout)

    async def close(self):
        try:
            await self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.read_task.cancel()
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- pages -------------------------------------------------------------------

    async def open_page(self, url):
        t = await self.call("Target.createTarget", {"url": "about:blank", "background": True})
        a = await self.call("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})
        s = a["sessionId"]
        await self.call("Page.enable", session=s)
        loaded = asyncio.get_running_loop().create_future()

        def on(msg):
            if msg.get("sessionId") == s and msg.get("method") == "Page.loadEventFired" and not loaded.done():
                loaded.set_result(True)

        self.listeners.append(on)
        try:
            await self.call("Page.navigate", {"url": url}, session=s)
            await asyncio.wait_for(loaded, 30)
        finally:
            self.listeners.remove(on)
        return t["targetId"], s

    async def evaluate(self, session, expression, timeout=60):
        r = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=session,
            timeout=timeout,
        )
        if "exceptionDetails" in r:
            raise CdpError(json.dumps(r["exceptionDetails"])[:500])
        return r["result"].get("value")

    async def close_target(self, target_id):
        try:
            await self.call("Target.closeTarget", {"targetId": target_id})
        except CdpError:
            pass

    # --- the extension's service worker -------------------------------------------

    async def worker_session(self, wait=15):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            t = await self.call("Target.getTargets")
            for info in t["targetInfos"]:
                if info["type"] == "service_worker" and info["url"].startswith(f"chrome-extension://{EXTENSION_ID}/"):
                    a = await self.call("Target.attachToTarget", {"targetId": info["targetId"], "flatten": True})
                    s = a["sessionId"]
                    for _ in range(400):
                        ok = await self.evaluate(s, "typeof tabmux === 'object' && tabmux.ready.then(() => true)")
                        if ok is True:
                            return s
                        await asyncio.sleep(0.025)
                    raise CdpError("the extension's worker has no tabmux handle")
            await asyncio.sleep(0.05)
        raise CdpError("the extension's service worker did not start")

    async def worker_eval(self, expression):
        s = await self.worker_session()
        try:
            return await self.evaluate(s, expression)
        finally:
            await self.call("Target.detachFromTarget", {"sessionId": s})

    async def worker_memory(self):
        """JS heap of the extension's service worker (Runtime.getHeapUsage), in bytes."""
        s = await self.worker_session()
        try:
            await self.call("HeapProfiler.collectGarbage", session=s)
            h = await self.call("Runtime.getHeapUsage", session=s)
            return {"used": h["usedSize"], "total": h["totalSize"]}
        finally:
            await self.call("Target.detachFromTarget", {"sessionId": s})


async def launch_plain():
    profile = tempfile.mkdtemp(prefix="tabmux-bench-plain-")
    b = PipeBrowser(["--headless", "--no-sandbox", f"--user-data-dir={profile}", "--no-first-run",
                     "--no-default-browser-check", "about:blank"], profile)
    return await b.start()


async def launch_with_extension(first, last, state=None):
    """Headless Chromium with the tabmux extension, pointed at ports first..last.

    With `state` (a tabmux state directory) the extension is the copy `tabmux extension
    install` makes with that directory's secret, as a user installs it: the instances
    run with TABMUX_STATE_DIR=state trust it and it trusts them. Without, the repository's
    unpaired extension (no tabmux instance accepts it)."""
    profile = tempfile.mkdtemp(prefix="tabmux-bench-ext-")
    ext = os.path.join(REPO, "extension")
    if state is not None:
        ext = os.path.join(profile, "tabmux-extension")
        tabmux = os.path.join(REPO, "target", "release", "tabmux")
        subprocess.run([tabmux, "extension", "install", ext], env=dict(os.environ, TABMUX_STATE_DIR=state),
                       check=True, capture_output=True)
    b = PipeBrowser([
        f"--load-extension={ext}",
        f"--disable-extensions-except={ext}",
        "--silent-debugger-extension-api",
        "--no-sandbox",
        "--headless",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "about:blank",
    ], profile)
    await b.start()
    await b.worker_eval(f"tabmux.setRange({first}, {last})")
    return b
