"""An aiohttp.web server for hangup's aiohttp suite: python3 app.py PORT.

GET /stream answers 200 and streams 10 chunks of 1000 bytes, 250 ms apart,
through a `web.StreamResponse` (chunked transfer encoding). Each chunk ends
with "end of chunk N\\n", so a client can read exactly up to one. Any other
path gets aiohttp's 404.

It logs to stderr, one line per event, flushed at once so that hangup sees
each line when it happens:

    app: listening on 127.0.0.1:PORT
    app: stream start
    app: prepare raised TYPE: MESSAGE (errno E)      the headers could not go
    app: write N raised TYPE: MESSAGE (errno E)      await resp.write() failed
    app: handler cancelled after N chunks            asyncio.CancelledError
    app: stream done after N chunks                  all 10 sent, write_eof()
    app: handler ends after N chunks                 always, last

After a failed write it tries one more, to show what that does (raises
again, or returns quietly: then a line says so), and stops streaming.
aiohttp's own loggers are shown too, at DEBUG, prefixed with the logger's
name (`aiohttp.server DEBUG: ...`), so that whatever aiohttp itself says
about the client leaving is in the log.
"""

import asyncio
import logging
import sys

try:
    from aiohttp import web
except ImportError:
    # The suite's `requires` can only name a command on PATH, and aiohttp
    # installs none: say what is missing instead of a bare ImportError.
    print("app: aiohttp is not installed: python3 -m pip install -r "
          "examples/python-aiohttp/requirements.txt", file=sys.stderr, flush=True)
    sys.exit(3)

CHUNKS = 10
SIZE = 1000
GAP = 0.25  # seconds between chunks: far more than a client's 50 ms read timeout


def log(line):
    print(f"app: {line}", file=sys.stderr, flush=True)


def chunk(n):
    tail = f"end of chunk {n}\n".encode()
    return b"x" * (SIZE - len(tail)) + tail


def describe(exc):
    errno = getattr(exc, "errno", None)
    return (f"{type(exc).__name__}: {exc}"
            + (f" (errno {errno})" if errno is not None else ""))


async def stream(request):
    sent = 0
    log("stream start")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    try:
        try:
            # Sends the status line and headers.
            await resp.prepare(request)
        except Exception as exc:
            log(f"prepare raised {describe(exc)}")
            return resp
        for n in range(1, CHUNKS + 1):
            if n > 1:
                await asyncio.sleep(GAP)
            try:
                await resp.write(chunk(n))
            except Exception as exc:  # what aiohttp's write raises: show which
                log(f"write {n} raised {describe(exc)}")
                try:
                    await resp.write(chunk(n + 1))
                except Exception as again:
                    log(f"write {n + 1} raised {describe(again)}")
                else:
                    log(f"write {n + 1} returned quietly")
                return resp
            sent = n
        await resp.write_eof()
        log(f"stream done after {sent} chunks")
        return resp
    except asyncio.CancelledError:
        log(f"handler cancelled after {sent} chunks")
        raise
    finally:
        log(f"handler ends after {sent} chunks")


def main():
    port = int(sys.argv[1])
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(name)s %(levelname)s: %(message)s")
    logging.getLogger("aiohttp").setLevel(logging.DEBUG)
    app = web.Application()
    app.router.add_get("/stream", stream)
    # No access log (one line per request, noise here); run_app's own
    # banner replaced by one line saying it listens.
    web.run_app(app, host="127.0.0.1", port=port, access_log=None,
                print=lambda _: log(f"listening on 127.0.0.1:{port}"))


if __name__ == "__main__":
    main()
