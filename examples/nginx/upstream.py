"""The upstream behind nginx in hangup's nginx suite (Python's standard
library only): GET /stream answers 200 with a Content-Length of 20,000
bytes and writes them as 20 chunks of 1,000, 250 ms apart; GET /ping
answers "pong". It logs every chunk's fate to stderr, one line each:

    upstream: chunk N sent
    upstream: chunk N failed: ERROR (errno E)

so the suite sees when nginx gave up on the upstream connection.
Flags: `--port N`, `--ready FILE` (made once it listens).
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNKS = 20
SIZE = 1000
GAP = 0.25


def log(line):
    print(f"upstream: {line}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass  # nginx's access log says it

    def do_GET(self):
        if self.path == "/ping":
            body = b"pong\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(CHUNKS * SIZE))
        self.end_headers()
        for n in range(1, CHUNKS + 1):
            if n > 1:
                time.sleep(GAP)
            try:
                self.wfile.write(b"x" * (SIZE - 1) + b"\n")
                self.wfile.flush()
            except OSError as e:
                log(f"chunk {n} failed: {type(e).__name__} (errno {e.errno})")
                self.close_connection = True
                return
            log(f"chunk {n} sent")


def main():
    port = int(sys.argv[sys.argv.index("--port") + 1])
    ready = sys.argv[sys.argv.index("--ready") + 1]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    log(f"listening on 127.0.0.1:{port}")
    open(ready, "w").close()
    server.serve_forever()


if __name__ == "__main__":
    main()
