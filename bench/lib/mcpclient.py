"""An MCP client over a server's stdio: the `mcp` package's ClientSession on a small
stdio transport of our own, which also knows the server's pid and the exact size of
every JSON-RPC line the server sent (what a model's context would receive)."""

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.message import SessionMessage


class Wire:
    """What went over the pipe: raw size of each answer by request id."""

    def __init__(self):
        self.sizes = {}
        self.last_size = 0

    def record(self, line):
        self.last_size = len(line)
        try:
            i = json.loads(line).get("id")
        except Exception:
            i = None
        if i is not None:
            self.sizes[i] = len(line)


@asynccontextmanager
async def stdio_session(argv, env=None, stderr=None, cwd=None, name="tabmux-bench", timeout=120):
    """Spawns `argv`, yields (session, process, wire, t_spawn). Not initialized yet."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    t_spawn = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr if stderr is not None else asyncio.subprocess.DEVNULL,
        env=full_env,
        cwd=cwd,
        limit=256 * 1024 * 1024,
        start_new_session=True,
    )
    wire = Wire()
    r_send, r_recv = anyio.create_memory_object_stream(1000)
    w_send, w_recv = anyio.create_memory_object_stream(1000)

    async def reader():
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace").rstrip("\n")
                if not text.strip():
                    continue
                wire.record(text)
                try:
                    msg = types.jsonrpc_message_adapter.validate_json(text, by_name=False)
                    await r_send.send(SessionMessage(msg))
                except ValueError as e:
                    await r_send.send(e)
        finally:
            await r_send.aclose()

    async def writer():
        async for m in w_recv:
            data = m.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
            try:
                proc.stdin.write(data.encode())
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                break

    tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
    try:
        async with ClientSession(
            r_recv,
            w_send,
            client_info=types.Implementation(name=name, version="1.0"),
            read_timeout_seconds=timeout,
        ) as session:
            yield session, proc, wire, t_spawn
    finally:
        await stop_process(proc)
        for t in tasks:
            t.cancel()


async def stop_process(proc):
    """Closes a server's stdin (its client leaves); kills its process group if it has
    not exited 5 s later."""
    try:
        proc.stdin.close()
    except Exception:
        pass
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except (asyncio.TimeoutError, ProcessLookupError):
        kill_tree(proc.pid)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            pass


def kill_tree(pid, sig=9):
    """Kills the process group the server was started in (it leads its own session)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def status_kb(pid, field):
    """A KiB field of /proc/<pid>/status (VmRSS, VmHWM, ...); None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def rss_kb(pid):
    """VmRSS of one process, in KiB (None when gone)."""
    return status_kb(pid, "VmRSS")


def text_of(result):
    """All text blocks of a tool result, joined."""
    out = []
    for c in result.content:
        if getattr(c, "type", None) == "text":
            out.append(c.text)
    return "\n".join(out)
