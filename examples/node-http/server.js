// A plain node:http server (no dependencies) for hangup's node_http suite.
// It logs to stderr, one line each, what Node tells the application when a
// client hangs up, tagged with the connection's number (`#1`, `#2`, ...).
'use strict';
const http = require('node:http');

const port = Number(process.argv[2]);
const log = (line) => console.error(line); // stderr is a pipe: written at once

const server = http.createServer((req, res) => {
  const tag = `#${req.socket.id} ${req.url}`;
  // The client left: 'aborted' (deprecated, still emitted) and 'close' on
  // the request; its 'error' fires only when someone listens for it.
  req.on('aborted', () => log(`${tag} req aborted`));
  req.on('close', () => log(`${tag} req close`));
  req.on('error', (err) => log(`${tag} req error ${err.code} (${err.message})`));
  // The response closes either way; writableFinished says whether all of it
  // was handed to the kernel.
  res.on('close', () => log(`${tag} res close writableFinished=${res.writableFinished}`));
  res.on('error', (err) => log(`${tag} res error ${err.code} (${err.message})`));
  // end()'s callback runs once the whole response is handed to the kernel.
  const finish = () => res.end(() => log(`${tag} end done`));

  if (req.url === '/stream') {
    // 10 chunks of 1000 bytes, 250 ms apart. It goes on after the client
    // has left, to show what a write does then: false, thrown, or failed.
    const write = (i) => {
      try {
        const ok = res.write(Buffer.alloc(1000, 'x'), (err) => err && log(`${tag} write ${i} failed ${err.code}`));
        if (!ok) log(`${tag} write ${i} returned false`);
      } catch (err) {
        log(`${tag} write ${i} threw ${err.code}`);
      }
      setTimeout(i < 9 ? write : finish, 250, i + 1);
    };
    write(0);
  } else if (req.url === '/late') {
    setTimeout(finish, 300); // an empty 200, after 300 ms
  } else {
    res.statusCode = 404;
    res.end();
  }
});

// The socket's own errors (a read's ECONNRESET, a write's EPIPE).
let connections = 0;
server.on('connection', (socket) => {
  socket.id = ++connections;
  socket.on('error', (err) => log(`#${socket.id} socket error ${err.code} (${err.message})`));
});
server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
