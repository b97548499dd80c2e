"""Installs what the bench needs, once: the peers (npm, into bench/node_modules), the
Python `mcp` client, a tokenizer, and a release build of tabmux."""

import importlib
import os
import subprocess
import sys

from .fixtures import BENCH, REPO

PEER_FILES = [
    os.path.join(BENCH, "node_modules", "@playwright", "mcp", "cli.js"),
    os.path.join(BENCH, "node_modules", "chrome-devtools-mcp", "build", "src", "bin", "chrome-devtools-mcp.js"),
]


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def ensure_peers():
    if all(os.path.exists(p) for p in PEER_FILES):
        return
    log("installing the peers into bench/node_modules (npm ci)")
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    if not os.path.exists(os.path.join(BENCH, "package-lock.json")):
        cmd[1] = "install"
    subprocess.run(cmd, cwd=BENCH, check=True)


def ensure_python():
    try:
        importlib.import_module("mcp")
        importlib.import_module("mcp_types")
    except ImportError:
        log("installing the Python MCP client (pip install mcp)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "mcp>=2.3,<3"], check=True)
        importlib.invalidate_caches()
    try:
        importlib.import_module("bpe_openai")
    except ImportError:
        log("installing the cl100k_base tokenizer (pip install bpe-openai)")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "bpe-openai"])
        if r.returncode != 0:
            log("no tokenizer: token counts fall back to characters / 4")
        importlib.invalidate_caches()


def build_tabmux():
    log("building tabmux (cargo build --release)")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "tabmux"], cwd=REPO, check=True)


class Tokenizer:
    def __init__(self):
        try:
            import bpe_openai

            self.enc = bpe_openai.get_encoding("cl100k_base")
            self.name = "cl100k_base (bpe-openai)"
        except Exception:
            self.enc = None
            self.name = "characters / 4 (no tokenizer installed)"

    def count(self, text):
        if self.enc is None:
            return (len(text) + 3) // 4
        # The encoder refuses very long inputs: count line-aligned chunks.
        total, chunk, size = 0, [], 0
        for line in text.splitlines(keepends=True):
            chunk.append(line)
            size += len(line)
            if size > 50_000:
                total += len(self.enc.encode("".join(chunk)))
                chunk, size = [], 0
        if chunk:
            total += len(self.enc.encode("".join(chunk)))
        return total
