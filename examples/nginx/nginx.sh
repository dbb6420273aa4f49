#!/bin/sh
# Starts an upstream and Debian's nginx in front of it, both in the
# foreground of this script's process group, everything they write under
# BASE: `nginx.sh PORT BASE UPSTREAM...` (UPSTREAM: the upstream's command,
# given `--port UPSTREAM_PORT` after it).
#
# hangup starts this as the program under test: nginx is what the suite's
# client talks to, on 127.0.0.1:PORT; the upstream listens on PORT+1.
# Both end with the program's PID namespace when hangup stops it.
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
exec nginx -c "$base/nginx.conf" -e stderr
