"""A bare ASGI app (no framework) for hangup's uvicorn suite.

GET /stream answers 200 and streams 10 chunks of 1000 bytes, 250 ms apart
(chunked transfer encoding, `more_body=True`). Each chunk ends with
"end of chunk N\\n", so a client can read exactly up to one. Any other path
gets a 404.

While it streams, a second task waits on `receive()`: under ASGI, that is
where a server reports a client that left (`http.disconnect`). The app also
catches whatever `send()` raises. Either way, it logs one line to stderr,
flushed at once so that hangup sees the line when it happens:

    app: http.disconnect after N chunks
    app: send raised TYPE: MESSAGE (errno E)

After a disconnect it makes one more send, to show what that does (raise,
or return quietly: then one more line says so), and stops streaming.
"""

import asyncio
import sys

CHUNKS = 10
SIZE = 1000
GAP = 0.25  # seconds between chunks: far more than a client's 50 ms read timeout


def log(line):
    print(f"app: {line}", file=sys.stderr, flush=True)


def chunk(n):
    tail = f"end of chunk {n}\n".encode()
    return b"x" * (SIZE - len(tail)) + tail


async def app(scope, receive, send):
    # uvicorn also sends a "lifespan" scope at startup; returning at once
    # tells it the app has no startup or shutdown work.
    if scope["type"] != "http":
        return
    if scope["path"] != "/stream":
        await send({"type": "http.response.start", "status": 404})
        await send({"type": "http.response.body", "body": b"not found\n"})
        return

    await receive()  # the request itself: a GET has no body to wait for
    sent = 0
    gone = asyncio.Event()

    async def watch():
        # The next message only comes when the client leaves (or, after the
        # response is complete, at once: so this task is cancelled before
        # the last send).
        message = await receive()
        if message["type"] == "http.disconnect":
            log(f"http.disconnect after {sent} chunks")
            gone.set()

    watcher = asyncio.create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for n in range(1, CHUNKS + 1):
            if n > 1:
                # Wake at the next chunk's time, or as soon as the client
                # leaves: an app that watches stops its work early.
                try:
                    await asyncio.wait_for(gone.wait(), GAP)
                except asyncio.TimeoutError:
                    pass
            await send({"type": "http.response.body", "body": chunk(n),
                        "more_body": True})
            if gone.is_set():
                # This send came after the disconnect: had it failed, the
                # `except` below would have said so.
                log("a send after http.disconnect returned quietly")
                return
            sent = n
        watcher.cancel()
        await send({"type": "http.response.body", "body": b"",
                    "more_body": False})
    except Exception as exc:  # what a server's send may raise: show which
        errno = getattr(exc, "errno", None)
        log(f"send raised {type(exc).__name__}: {exc}"
            + (f" (errno {errno})" if errno is not None else ""))
    finally:
        watcher.cancel()
