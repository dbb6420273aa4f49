#!/bin/sh
# Starts an upstream and Debian's nginx in front of it, both in the
# foreground of this script's process group, everything they write under
# BASE: `nginx.sh PORT BASE UPSTREAM...` (UPSTREAM: the upstream's command,
# given `--port UPSTREAM_PORT` after it).
#
# hangup starts this as the program under test: nginx is what the suite's
# client talks to, on 127.0.0.1:PORT; the upstream listens on PORT+1.
# Both end with the program's PID namespace when hangup stops it. It says
# "nginx.sh: ready" once a request went through nginx.
set -eu
port=$1
base=$2
shift 2
upstream_port=$((port + 1))

mkdir -p "$base/logs" "$base/temp"
# The upstream, in a subshell that exits at once: its parent becomes the
# namespace's init, not nginx (whose master would log its exit as an
# unknown process's). It says it listens by making a file.
rm -f "$base/upstream.ready"
("$@" --port "$upstream_port" --ready "$base/upstream.ready" &)
tries=0
while [ ! -e "$base/upstream.ready" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 200 ]; then
    echo "nginx.sh: the upstream did not listen within 10 s" >&2
    exit 1
  fi
  sleep 0.05
done
cat > "$base/nginx.conf" <<CONF
daemon off;
master_process on;
# The worker runs as whoever runs this: as root, nginx would switch it to
# nobody and chown its temp folders, which fails inside hangup's user
# namespace (rootless, where nobody maps to no one).
user $(id -un);
worker_processes 1;
pid $base/nginx.pid;
# Every message from [info] up (nginx logs a client that left at info),
# on stderr, one line each.
error_log stderr info;
events { worker_connections 128; }
http {
    access_log /dev/stderr;
    client_body_temp_path $base/temp/body;
    proxy_temp_path $base/temp/proxy;
    fastcgi_temp_path $base/temp/fastcgi;
    uwsgi_temp_path $base/temp/uwsgi;
    scgi_temp_path $base/temp/scgi;
    upstream app { server 127.0.0.1:$upstream_port; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
        }
    }
}
CONF
nginx -c "$base/nginx.conf" -e stderr &
nginx=$!
# Ready once a request went through nginx's worker and back and nginx
# closed that connection: the worker is up with all its fds (a `released`
# check compares with what the program holds when it is ready), which the
# master's "start worker process" line does not promise.
python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("nginx.sh: nginx did not listen within 10 s")
        time.sleep(0.05)
s.sendall(b"GET /ping HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n")
while s.recv(4096):
    pass
s.close()
PY
echo "nginx.sh: ready (a request went through the worker)" >&2
# SIGTERM (hangup's stop) reaches nginx and this shell alike: they are one
# process group. This shell ignores it and waits for nginx to finish
# shutting down: its end ends the PID namespace, and with it whatever nginx
# had still to do and to log (its worker's exit, the master's), which made
# what nginx printed at its end a matter of timing.
trap '' TERM
wait "$nginx"
