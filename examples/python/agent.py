#!/usr/bin/env python3
"""A Lockstep agent in Python: the whole protocol round on the standard library plus websockets.

    python3 examples/python/agent.py [URL]        (default ws://127.0.0.1:7420/ws)

It says hello, reads a function of the program "main" (creating one on an empty server), waits its
turn for the function's write lock printing its queue position, adds a node with the hash of what
it read and the lock's fence, and releases. Reading before locking is what lets a conflict happen:
if someone changes the function while we wait, the server refuses our edit with CONFLICT and a diff
of what changed since our read; we print it, read again and redo the edit. Exit status 0 on success.

Needs `websockets` 10.4 or later: on Debian or Ubuntu `apt install python3-websockets`; elsewhere, in
a virtual environment, `python3 -m venv .venv && .venv/bin/pip install websockets`, then run this
with `.venv/bin/python` (the README's "Use it from" says the same).
Every message is JSON-RPC 2.0; docs/protocol.md describes them all.
"""

import asyncio
import itertools
import json
import sys

import websockets

URL = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:7420/ws"


class LockstepError(Exception):
    """A JSON-RPC error from the server: branch on .type (CONFLICT, LOCK_DENIED, ...), not the text."""

    def __init__(self, error):
        self.data = error.get("data") or {}
        self.type = self.data.get("type")
        super().__init__(f"{self.type or error['code']}: {error['message']}")


class Session:
    """One socket is one session: calls are matched to replies by id; pushes (no id) queue up in order."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.replies = {}
        self.pushes = asyncio.Queue()
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for text in self.ws:
                message = json.loads(text)
                if "id" not in message:
                    await self.pushes.put(message)
                elif message["id"] in self.replies:
                    self.replies.pop(message["id"]).set_result(message)
        finally:
            for reply in self.replies.values():
                reply.set_exception(ConnectionError("the connection closed"))

    async def call(self, method, params=None):
        call_id = next(self.ids)
        reply = asyncio.get_running_loop().create_future()
        self.replies[call_id] = reply
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": call_id, "method": method, "params": params or {}}))
        message = await reply
        if "error" in message:
            raise LockstepError(message["error"])
        return message["result"]

    async def acquire(self, params):
        """Locks, waiting in the FIFO queue when needed; returns the grants (with their fences)."""
        result = await self.call("lock.acquire", {**params, "wait": True})
        if result["status"] == "granted":
            return result["grants"]
        ticket = result["ticket"]
        print(f"queued: position {result['positions'][0]['position']}", flush=True)
        while True:
            push = await self.pushes.get()
            p = push.get("params", {})
            if p.get("ticket") != ticket:
                continue
            if push["method"] == "lock.queue":
                print(f"queued: position {p['positions'][0]['position']}", flush=True)
            elif push["method"] == "lock.granted":
                return p["grants"]
            else:  # lock.waitTimeout, lock.cancelled
                raise RuntimeError(f"{push['method']}: {p}")


async def pick_function(s):
    """The first function of "main"; on an empty program, one made for the demo."""
    functions = (await s.call("program.get"))["functions"]
    if functions:
        return functions[0]["id"]
    grants = await s.acquire({"structure": True, "mode": "write", "description": "python: add a function"})
    try:
        result = await s.call(
            "edit.apply",
            {"ops": [{"op": "addFunction", "name": "hello_python"}], "fences": {"structure": grants[0]["fence"]}},
        )
        return result["created"][0]["id"]
    finally:
        await s.call("lock.release", {"structure": True})


def describe(diff):
    if diff is None:
        return "no version ever had the hash we read"
    nodes = diff["nodes"]
    return f"nodes added {len(nodes['added'])}, removed {len(nodes['removed'])}, modified {len(nodes['modified'])}"


async def edit(s, fn, current, fence):
    """Adds a node, based on what we read (hash) and under our lock (fence); redoes it once after a conflict."""
    for attempt in (1, 2):
        body = current["function"]
        node = max((n["id"] for n in body["nodes"]), default=0) + 1
        try:
            result = await s.call(
                "edit.apply",
                {
                    "ops": [{"op": "addNode", "function": fn, "node": {"id": node, "op": "const", "attrs": {"value": 42}}}],
                    "expectedHashes": {str(fn): current["hash"]},
                    "fences": {str(fn): fence},
                },
            )
            print(f"edited: {body['name']} is now version {result['functions'][0]['version']}", flush=True)
            return
        except LockstepError as e:
            if e.type != "CONFLICT" or attempt == 2:
                raise
            for c in e.data["conflicts"]:
                print(f"conflict: function {c['functionId']} changed since our read: {describe(c['diff'])}", flush=True)
            current = await s.call("function.get", {"function": fn})


async def main():
    async with websockets.connect(URL) as ws:
        s = Session(ws)
        hello = await s.call("session.hello", {"protocol": 1, "name": "python-agent"})
        print(f"hello: session {hello['sessionId']}", flush=True)
        fn = await pick_function(s)
        current = await s.call("function.get", {"function": fn})
        body = current["function"]
        print(f"read: {body['name']} version {current['version']} hash {current['hash'][:12]}", flush=True)
        grants = await s.acquire({"functions": [fn], "mode": "write", "description": "python: add a node"})
        print(f"locked: fence {grants[0]['fence']}", flush=True)
        try:
            await edit(s, fn, current, grants[0]["fence"])
        finally:
            released = (await s.call("lock.release", {"functions": [fn]}))["released"]
            print(f"released: {len(released)} lock(s)", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (LockstepError, OSError, RuntimeError, websockets.WebSocketException) as err:
        print(f"agent failed: {err}", file=sys.stderr)
        sys.exit(1)
