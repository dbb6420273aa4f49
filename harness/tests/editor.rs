//! The editor experience inside steps, asked of taplo itself: the language
//! server behind VS Code's Even Better TOML completes the action and
//! modifier keys of a step with their descriptions, describes each on
//! hover, and completes and describes state names.
//!
//! It needs a taplo language server: `HANGUP_TAPLO_LSP` holds the command
//! that starts one on stdio, split at whitespace, e.g. `taplo lsp stdio`
//! (`cargo install taplo-cli`) or `node <checkout>/harness/tests/editor/taplo-lsp.js`
//! with the npm package `@taplo/lsp` on `NODE_PATH` (the WebAssembly build
//! the VS Code extension runs; what `.ci/run` installs). Without one the
//! test is skipped, except under CI (`CI` set), where it fails.
//! `tests/schema.rs` makes the same checks without taplo, by walking the
//! schema the way taplo does.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use hangup::model::TcpState;
use hangup::suite::action::{MODIFIERS, catalog};
use hangup::suite::schema::json_schema;
use serde_json::{Value, json};

/// How long one answer may take (the WebAssembly server starts slowly).
const PATIENCE: Duration = Duration::from_secs(60);

/// A language server on stdio, spoken to with JSON-RPC.
struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
}

impl Server {
    fn start(command: &str) -> Server {
        let mut words = command.split_whitespace();
        let program = words.next().expect("HANGUP_TAPLO_LSP names a command");
        let mut child = Command::new(program)
            .args(words)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    match line.split_once(':') {
                        Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                            length = value.trim().parse::<usize>().ok();
                        }
                        _ => {}
                    }
                }
                let Some(length) = length else { return };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(message) = serde_json::from_slice(&body) else {
                    return;
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            stdin,
            messages,
            next_id: 0,
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .and_then(|()| self.stdin.flush())
            .expect("the language server reads its input");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The next message, answering the server's own requests on the way.
    fn next(&mut self, waiting_for: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.messages.recv_timeout(left).unwrap_or_else(|_| {
                panic!("the language server gave no {waiting_for} within {PATIENCE:?}")
            });
            match (message.get("id"), message["method"].as_str()) {
                (Some(id), Some(method)) => {
                    // Settings: the defaults, for every section asked for.
                    let result = match method {
                        "workspace/configuration" => {
                            let asked = message["params"]["items"].as_array().map_or(0, Vec::len);
                            json!(vec![json!({}); asked])
                        }
                        _ => Value::Null,
                    };
                    let answer = json!({ "jsonrpc": "2.0", "id": id, "result": result });
                    self.send(&answer);
                }
                _ => return message,
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.next(method);
            if message["id"] == json!(id) && message.get("method").is_none() {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return message["result"].clone();
            }
        }
    }

    /// Waits for the diagnostics of a document: it has been checked
    /// against its schema.
    fn checked(&mut self, uri: &str) {
        loop {
            let message = self.next("diagnostics");
            if message["method"] == "textDocument/publishDiagnostics"
                && message["params"]["uri"] == uri
            {
                return;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The document: one step per key of a step (so that each can be hovered),
/// an empty step and a loop body (to complete in), and state checks.
fn document() -> String {
    let mut text = String::from(
        "#:schema ../schema/hangup-suite.schema.json\n\
         [[case]]\n\
         name = \"a\"\n\
         server = [{ listen = 8080 }, \"accept\"]\n\
         \n\
         [[case]]\n\
         name = \"b\"\n\
         client = [\n\
         \x20 { connect = 8080, timeout = \"1s\" },\n\
         \x20 {  },\n\
         \x20 { loop = [{ send = 1 }], times = 2 },\n\
         \x20 { state = { client = \"TIME_WAIT\" }, within = \"1s\" },\n\
         \x20 { state = { server = \"\" } },\n",
    );
    for key in step_keys() {
        text.push_str(&format!("  {{ {key} = 0 }},\n"));
    }
    text.push_str("]\n");
    text
}

fn step_keys() -> Vec<&'static str> {
    catalog()
        .map(|d| d.keyword)
        .chain(MODIFIERS.iter().map(|d| d.keyword))
        .collect()
}

/// The LSP position of the first `marker` in `text`, plus `shift`
/// characters (the document is ASCII: bytes are UTF-16 units).
fn position(text: &str, marker: &str, shift: usize) -> Value {
    let offset = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` is not in the document"))
        + shift;
    let line = text[..offset].matches('\n').count();
    let character = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": character })
}

/// (label, documentation) of each completion item.
fn items(result: &Value) -> Vec<(String, String)> {
    let list = match result {
        Value::Array(list) => list.clone(),
        other => other["items"].as_array().cloned().unwrap_or_default(),
    };
    list.iter()
        .map(|item| {
            let docs = match &item["documentation"] {
                Value::String(text) => text.clone(),
                other => other["value"].as_str().unwrap_or_default().to_string(),
            };
            (item["label"].as_str().unwrap_or_default().to_string(), docs)
        })
        .collect()
}

#[test]
fn taplo_completes_and_describes_step_keys_and_state_names() {
    let Some(command) = std::env::var("HANGUP_TAPLO_LSP")
        .ok()
        .filter(|c| !c.trim().is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the taplo check: set HANGUP_TAPLO_LSP (see .ci/run)"
        );
        eprintln!("HANGUP_TAPLO_LSP not set: taplo completion and hover check skipped");
        return;
    };
    let schema: Value = serde_json::from_str(&json_schema()).expect("the schema is JSON");
    let properties = &schema["$defs"]["step"]["properties"];
    let described = |key: &str| {
        properties[key]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} has a description"))
            .to_string()
    };

    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
    // The document is never written: it lives next to the reference suites,
    // so its `#:schema` line names the committed schema as theirs does.
    let uri = format!("file://{}/suites/editor-check.toml", root.display());
    let text = document();

    let mut server = Server::start(&command);
    server.request(
        "initialize",
        json!({
            "processId": std::process::id(),
            "rootUri": format!("file://{}", root.display()),
            "workspaceFolders": [{ "uri": format!("file://{}", root.display()), "name": "hangup" }],
            "capabilities": { "workspace": { "configuration": true } },
        }),
    );
    server.notify("initialized", json!({}));
    server.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "toml", "version": 1, "text": text } }),
    );
    server.checked(&uri);

    let at = |marker: &str, shift: usize| json!({ "textDocument": { "uri": uri }, "position": position(&text, marker, shift) });
    let mut problems = Vec::new();

    // Keys: in an empty step, before a key of a step, in a loop's step.
    for (place, marker, shift) in [
        ("an empty step", "{  }", 2),
        ("a step's second key", "timeout", 0),
        ("a loop's step", "send = 1", 0),
    ] {
        let offered = items(&server.request("textDocument/completion", at(marker, shift)));
        for key in step_keys() {
            let found: Vec<&String> = offered
                .iter()
                .filter(|(label, _)| label == key)
                .map(|(_, docs)| docs)
                .collect();
            if found != [&described(key)] {
                problems.push(format!(
                    "completion in {place}: `{key}` offered as {found:?}"
                ));
            }
        }
    }

    // While typing: after `{ connect = 8080, ` (not valid TOML yet).
    let typing = format!("file://{}/suites/editor-typing.toml", root.display());
    let unfinished = "#:schema ../schema/hangup-suite.schema.json\n[[case]]\nname = \"c\"\n\
                      client = [\n  { connect = 8080,  },\n]\n";
    server.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": typing, "languageId": "toml", "version": 1, "text": unfinished } }),
    );
    server.checked(&typing);
    let offered = items(&server.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": typing }, "position": position(unfinished, "8080, ", 6) }),
    ));
    for key in step_keys() {
        if !offered.contains(&(key.to_string(), described(key))) {
            problems.push(format!(
                "completion after `{{ connect = 8080, `: no `{key}`"
            ));
        }
    }

    // Hover on every key, each in a step of its own; and on keys in the
    // first case, in a loop's step and beside a state check.
    for key in step_keys() {
        let marker = format!("{{ {key} = 0 }}");
        let hover = server.request("textDocument/hover", at(&marker, 2));
        if hover["contents"]["value"] != described(key) {
            problems.push(format!("hover on `{key}`: {hover}"));
        }
    }
    for (key, marker) in [
        ("listen", "listen"),
        ("connect", "connect"),
        ("timeout", "timeout"),
        ("send", "send = 1"),
        ("within", "within"),
        ("state", "state"),
    ] {
        let hover = server.request("textDocument/hover", at(marker, 1));
        if hover["contents"]["value"] != described(key) {
            problems.push(format!("hover on `{key}` ({marker}): {hover}"));
        }
    }

    // State names: completed in a state check, and described on hover.
    let states: Vec<String> = TcpState::ALL
        .iter()
        .map(|s| format!("\"{}\"", s.name()))
        .collect();
    let offered = items(&server.request("textDocument/completion", at("server = \"\"", 10)));
    let labels: Vec<&String> = offered.iter().map(|(label, _)| label).collect();
    if labels != states.iter().collect::<Vec<_>>() || offered.iter().any(|(_, d)| d.is_empty()) {
        problems.push(format!("state names offered: {offered:?}"));
    }
    let state_key = &properties["state"]["properties"]["client"]["description"];
    for (what, marker, shift) in [
        ("the state key `client`", "client = \"TIME_WAIT\"", 1),
        ("the state name", "TIME_WAIT", 1),
    ] {
        let hover = server.request("textDocument/hover", at(marker, shift));
        if hover["contents"]["value"] != *state_key {
            problems.push(format!("hover on {what}: {hover}"));
        }
    }
    assert!(problems.is_empty(), "taplo: {problems:#?}");
}
