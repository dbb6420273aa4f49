#!/usr/bin/env node
// taplo's language server as VS Code's Even Better TOML runs it: the
// WebAssembly build in the npm package @taplo/lsp, served here over stdio
// so that tests/editor.rs can talk to it like to `taplo lsp stdio`.
//
// Needs @taplo/lsp where require() finds it (NODE_PATH; .ci/run installs
// it under target/ci/taplo).
"use strict";
const fs = require("fs");
const fsp = require("fs/promises");
const path = require("path");
const { TaploLsp } = require("@taplo/lsp");

function write(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}

let taplo;
let waiting = [];
let input = Buffer.alloc(0);
process.stdin.on("data", (chunk) => {
  input = Buffer.concat([input, chunk]);
  for (;;) {
    const end = input.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/Content-Length: *(\d+)/i.exec(input.subarray(0, end).toString())[1]);
    if (input.length < end + 4 + length) return;
    const message = JSON.parse(input.subarray(end + 4, end + 4 + length).toString("utf8"));
    input = input.subarray(end + 4 + length);
    if (message.method === "exit") process.exit(0);
    if (taplo) taplo.send(message);
    else waiting.push(message);
  }
});
process.stdin.on("end", () => process.exit(0));

TaploLsp.initialize(
  {
    cwd: () => process.cwd(),
    envVar: (name) => process.env[name],
    envVars: () => Object.entries(process.env),
    findConfigFile: (from) =>
      [".taplo.toml", "taplo.toml"].map((name) => path.join(from, name)).find((p) => fs.existsSync(p)),
    glob: () => [],
    isAbsolute: (p) => path.isAbsolute(p),
    now: () => new Date(),
    readFile: (p) => fsp.readFile(p),
    writeFile: (p, bytes) => fsp.writeFile(p, bytes),
    // stdout carries the protocol: taplo's own output goes to stderr.
    stdin: process.stdin,
    stdout: process.stderr,
    stderr: process.stderr,
    stdErrAtty: () => false,
    urlToFilePath: (url) => decodeURIComponent(url).slice("file://".length),
    fetch: { fetch, Headers, Request, Response },
  },
  { onMessage: write },
).then((lsp) => {
  taplo = lsp;
  for (const message of waiting) taplo.send(message);
  waiting = [];
});
