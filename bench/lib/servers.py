"""The servers under test and how each one does the bench's steps with its own tools."""

import os
import re
import time

from .fixtures import BENCH, REPO
from .mcpclient import text_of

NODE_MODULES = os.path.join(BENCH, "node_modules")
TABMUX = os.path.join(REPO, "target", "release", "tabmux")
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")


class ToolError(Exception):
    pass


class Adapter:
    kind = ""  # snapshot format: tabmux / playwright / cdt
    label = ""

    def __init__(self):
        self.session = None

    def argv(self):
        raise NotImplementedError

    def env(self):
        return {}

    async def call(self, tool, args=None, timeout=120):
        t = time.perf_counter()
        r = await self.session.call_tool(tool, args or {}, read_timeout_seconds=timeout)
        dt = time.perf_counter() - t
        if r.is_error:
            raise ToolError(f"{self.label} {tool}: {text_of(r)[:400]}")
        return r, dt

    async def setup(self):
        """Anything needed once before the first page step."""

    # Each step returns (text the model receives, seconds).
    async def navigate(self, url):
        r, dt = await self.call("browser_navigate", {"url": url})
        return text_of(r), dt

    async def snapshot(self, full=True):
        r, dt = await self.call("browser_snapshot", {})
        return text_of(r), dt

    async def navigate_snapshot(self, url):
        """Navigate, and have the page's snapshot in hand."""
        t, dt = await self.navigate(url)
        s, dt2 = await self.snapshot()
        return s, dt + dt2

    async def click(self, ref):
        r, dt = await self.call("browser_click", {"target": ref, "element": "button"})
        return text_of(r), dt

    async def type(self, ref, text):
        r, dt = await self.call("browser_type", {"target": ref, "element": "field", "text": text})
        return text_of(r), dt

    async def screenshot(self):
        r, dt = await self.call("browser_take_screenshot", {"type": "png"})
        return r, dt

    async def evaluate(self, fn):
        r, dt = await self.call("browser_evaluate", {"function": fn})
        return text_of(r), dt

    def ref_of(self, snapshot, role, name):
        for line in snapshot.splitlines():
            if f'{role} "{name}"' in line:
                m = self.REF.search(line)
                if m:
                    return m.group(1)
        raise ToolError(f"{self.label}: no {role} {name!r} with a ref in the snapshot")


class Tabmux(Adapter):
    kind = "tabmux"
    REF = re.compile(r"\[(e\d+)\]")

    def __init__(self, label="tabmux (direct)", args=("--launch",), env=None, source="collector"):
        super().__init__()
        self.label = label
        self.args = [*args, "--snapshot-source", source]
        self._env = env or {}
        self.source = source

    def argv(self):
        return [TABMUX, *self.args]

    def env(self):
        return self._env

    async def snapshot(self, full=True):
        # The default answer is bounded by a 50,000-character budget; `full` asks for all.
        # Naming the source makes tabmux walk the page again even when nothing changed
        # (a plain snapshot of an unchanged page reuses the last one): the full cost.
        r, dt = await self.call("browser_snapshot", {"maxChars": 0, "source": self.source} if full else {})
        return text_of(r), dt

    async def navigate_snapshot(self, url):
        # browser_navigate answers with the snapshot (within the default budget).
        return await self.navigate(url)


class Playwright(Adapter):
    kind = "playwright"
    label = "Playwright MCP"
    REF = re.compile(r"\[ref=([a-z0-9]+)\]")

    def __init__(self, workdir):
        super().__init__()
        self.workdir = workdir

    def argv(self):
        return ["node", os.path.join(NODE_MODULES, "@playwright", "mcp", "cli.js"), "--headless",
                "--executable-path", CHROMIUM, "--no-sandbox", "--isolated"]

    # 0.0.83's browser_navigate writes the snapshot to a file and answers with its
    # path, so a model that wants to read the page calls browser_snapshot next.


class DevtoolsMcp(Adapter):
    kind = "cdt"
    label = "chrome-devtools-mcp"
    REF = re.compile(r"uid=(\d+_\d+)")

    def __init__(self):
        super().__init__()
        self.page = 1

    def argv(self):
        return ["node", os.path.join(NODE_MODULES, "chrome-devtools-mcp", "build", "src", "bin", "chrome-devtools-mcp.js"),
                "--headless", "--isolated", "--executablePath", CHROMIUM, "--chromeArg=--no-sandbox",
                "--no-usage-statistics", "--no-performance-crux"]

    def env(self):
        return {"CHROME_DEVTOOLS_MCP_NO_USAGE_STATISTICS": "1"}

    async def setup(self):
        r, _ = await self.call("list_pages")
        m = re.search(r"^(\d+):.*\[selected\]", text_of(r), re.M)
        self.page = int(m.group(1)) if m else 1

    async def navigate(self, url):
        r, dt = await self.call("navigate_page", {"pageId": self.page, "type": "url", "url": url})
        return text_of(r), dt

    async def snapshot(self, full=True):
        r, dt = await self.call("take_snapshot", {"pageId": self.page})
        return text_of(r), dt

    async def click(self, ref):
        r, dt = await self.call("click", {"pageId": self.page, "uid": ref})
        return text_of(r), dt

    async def type(self, ref, text):
        r, dt = await self.call("fill", {"pageId": self.page, "uid": ref, "value": text})
        return text_of(r), dt

    async def screenshot(self):
        r, dt = await self.call("take_screenshot", {"pageId": self.page, "format": "png"})
        return r, dt

    async def evaluate(self, fn):
        r, dt = await self.call("evaluate_script", {"pageId": self.page, "function": fn})
        return text_of(r), dt

