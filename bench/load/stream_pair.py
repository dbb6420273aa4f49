#!/usr/bin/env python3
"""Plain-program baseline for stream_5mb.toml (stdlib only).

The same calls as the hangup case, in one process with two threads: the
server listens on 127.0.0.1:8080, accepts, then 80 times sleeps 5 ms and
sendall()s 64 KiB; the client connects, sets SO_RCVTIMEO to 25 ms and
recv(65536)s until it has 5,242,880 bytes. A read that times out (EAGAIN)
before then is a failure.

Run it in a fresh network namespace with loopback up:
    unshare -n sh -c 'ip link set lo up && python3 bench/load/stream_pair.py'
Prints `ok` (exit 0) or `EAGAIN after N bytes` (exit 1); exit 2 on any other
error.
"""
import socket
import struct
import sys
import threading
import time

PORT = 8080
CHUNKS = 80
CHUNK = 65536
TOTAL = CHUNKS * CHUNK  # 5,242,880

listening = threading.Event()  # mark "listening"
done = threading.Event()       # mark "done"
server_error = []


def server():
    try:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", PORT))
        ls.listen()
        listening.set()
        conn, _ = ls.accept()
        payload = b"x" * CHUNK
        for _ in range(CHUNKS):
            time.sleep(0.005)
            conn.sendall(payload)
        done.wait(30)
        conn.close()
        ls.close()
    except Exception as e:  # noqa: BLE001
        server_error.append(e)
        listening.set()


def client():
    if not listening.wait(30):
        return ("error", "server never listened")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", PORT))
    # SO_RCVTIMEO 25 ms on a blocking socket: the kernel returns EAGAIN
    # (Python: BlockingIOError), not Python's own poll-based timeout.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 25000))
    got = 0
    try:
        while got < TOTAL:
            data = s.recv(65536)
            if not data:
                return ("error", f"EOF after {got} bytes")
            got += len(data)
    except (BlockingIOError, socket.timeout):
        return ("eagain", got)
    finally:
        done.set()
        s.close()
    return ("ok", got)


def main():
    t = threading.Thread(target=server, daemon=True)
    t.start()
    kind, val = client()
    t.join(5)
    if kind == "ok":
        print("ok")
        return 0
    if kind == "eagain":
        print(f"EAGAIN after {val} bytes")
        return 1
    print(f"error: {val}; server: {server_error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
