//! The JSON Schema of the suite format, for editors.
//!
//! taplo (and so VS Code's Even Better TOML) validates a TOML file against
//! a JSON Schema named by a `#:schema <path or url>` comment on its first
//! line, completes keys and shows each property's `description` on hover.
//! [`json_schema`] describes what [`parse_suite`](super::parse_suite)
//! accepts; `hangup schema` prints it, and the repository commits it as
//! `schema/hangup-suite.schema.json`, which every reference suite names.
//!
//! The schema is written with `serde_json::json!` rather than derived with
//! schemars: the parser reads hand-written raw types with custom
//! `Deserialize` impls (bare-string steps, ports or addresses, durations),
//! which a derive cannot see. The lists that already exist in code (errno
//! names, TCP states) are taken from there.
//!
//! What a schema can say and the parser checks, the schema says too: exactly
//! one action per step, which modifiers apply to which action, which side
//! may listen, accept or connect, `repeat` only with a text payload, and the
//! grammar of durations. Every action, its modifiers, which sides may use
//! it and its words come from the action catalog
//! ([`catalog`]); only the shape of each value is
//! written here. Where the two still differ the schema is the stricter
//! one, so an editor may flag a file that `hangup check` accepts but never
//! the reverse, except for the checks a schema cannot make (unique case
//! names; what is checked across scripts, such as a `wait` needing a
//! `mark`; which side may take a step inside a `loop`; the longest
//! duration of [`super::limits`], which a pattern cannot compare, and a
//! text `send` times its `repeat`; the size limits are the numbers'
//! maxima):
//!
//! - errno names, `ok`/`EOF` and TCP states are listed in their canonical
//!   spelling (`EPIPE`, `TIME_WAIT`); the parser ignores case and also takes
//!   `EWOULDBLOCK` for `EAGAIN`.
//! - durations: a fraction has at most as many digits as its unit can hold
//!   exactly and without overflow (humantime rejects `1.0001h`, which is not
//!   a whole second, and `1.999999999m`, but takes `1.5000000000s`); `M`
//!   (months) takes no fraction; digits are not split by spaces (humantime
//!   reads `1 0s` as ten seconds and `1. 5s` as 1.5 seconds).
//! - `linger` is written in whole numbers of seconds or longer units; the
//!   parser takes any duration that adds up to whole seconds (`1000ms`,
//!   `1.5m`). `user_timeout` likewise in whole milliseconds or longer
//!   units, or seconds to three decimals (`1.5s`); the parser takes any
//!   duration that adds up to whole milliseconds (`1.5m`).
//! - an IPv6 loopback address is `::1` in its usual spellings, without a
//!   zone and without an embedded IPv4 tail.
//!
//! The schema is shaped for what taplo reads, which is less than a
//! validator does (its LSP: `crates/taplo-lsp/src/handlers/completion.rs`
//! and `hover.rs`, over `crates/taplo-common/src/schema/mod.rs`):
//!
//! - taplo follows a `$ref` and drops every keyword beside it, the
//!   `description` too, so a property describes its value in place (a
//!   duration is written out at each key that takes one) rather than
//!   naming a shared definition.
//! - it offers every `oneOf` and `anyOf` branch as an entry of its own and
//!   hides a schema that has an `allOf`, so a step holds its keys, each
//!   once, under its own `properties`, a value of two shapes says so with a
//!   list of types, and the rules of a step sit in `if`/`then`/`else`,
//!   which it does not read for completion (see `step()`).
//! - it validates as draft 7 (jsonschema 0.17 without the newer drafts),
//!   where a `$ref` ignores the keywords beside it and `dependentSchemas`
//!   does not exist: the step rules use only draft 7 keywords. Which side
//!   may take a step is said beside the `$ref` to the step, so taplo does
//!   not flag it; `hangup check` and draft 2020-12 validators do.
//! - it looks keys inside an array item up with the index twice; the case
//!   and the step carry an `items` for that (see `taplo_index()`).
//!
//! `tests/schema.rs` walks the schema as taplo does and `tests/editor.rs`
//! asks taplo itself (in CI) whether every action, modifier and state name
//! is completed and described inside a step.

use serde_json::{Map, Value, json};

use super::action::values::schema::duration;
use super::action::{ActionDef, MODIFIERS, catalog};
use crate::model::Errno;
use crate::model::Side;
use crate::sandbox::ALLOWED_SYSCTLS;
use crate::suite::limits::MAX_GENERATED_CASES;
use crate::suite::sweep::{Kind, Phase};

/// The JSON Schema (draft 2020-12) of a suite file, pretty-printed.
pub fn json_schema() -> String {
    serde_json::to_string_pretty(&schema()).expect("a json! value always serializes")
}

fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "hangup suite",
        "description": "A hangup suite: cases that script a TCP client and server (and a proxy between them), abort connections in every way TCP allows, and assert the errno each side saw and the TCP state of each side's socket. Every case runs in a fresh network namespace.",
        "type": "object",
        "properties": {
            "description": {
                "type": "string",
                "description": "What the suite is about; shown in reports.",
            },
            "deadline": described(
                duration(),
                "The default deadline of every case (30s unless set): a case that overruns it fails and says what each side was waiting for.",
            ),
            "tolerance": tolerance("The default timing tolerance of every case (floor 50ms, 25 percent unless set)."),
            "sysctl": sysctls("Per-namespace sysctls for every case; a case's own `sysctl` table overrides them key by key."),
            "program": program("The program under test of every case that does not name its own."),
            "case": {
                "type": "array",
                "minItems": 1,
                "description": "The cases (`[[case]]` tables), in the order they are listed; each is one test named `<suite file stem>::<case name>`.",
                "items": { "$ref": "#/$defs/case" },
            },
            "sweep": {
                "type": "array",
                "minItems": 1,
                "description": "Sweeps (`[[sweep]]` tables): one request hung up at every phase in every way against the suite's program; each (phase, kind) cell is a case named `<suite>::<sweep>::<phase>::<kind>`.",
                "items": { "$ref": "#/$defs/sweep" },
            },
        },
        "anyOf": [
            { "required": ["case"] },
            { "required": ["sweep"] },
        ],
        "additionalProperties": false,
        "$defs": {
            "case": case(),
            "sweep": sweep(),
            "step": step(),
        },
    })
}

/// A `[[case]]` table.
fn case() -> Value {
    json!({
        "type": "object",
        "description": "One scenario: settings for its network namespace and a script per side. The two scripts run at the same time, each in order.",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]+$",
                "description": "The case name, unique within the suite: letters, digits, `_` and `-`. The test is listed as `<suite>::<name>`.",
            },
            "description": {
                "type": "string",
                "description": "What the case shows; shown in reports.",
            },
            "ignore": {
                "type": "string",
                "description": "Skip the case unless `--ignored` asks for it, and say why.",
            },
            "deadline": described(
                duration(),
                "The whole case must finish within this (the suite's `deadline` by default); an overrun fails the case and says what each side was waiting for.",
            ),
            "tolerance": tolerance("How far a measured duration (`after`) may be from the expected one in this case; unset fields keep the suite's."),
            "sysctl": sysctls("Per-namespace sysctls of this case, over the suite's (on two hosts, set on both)."),
            "topology": {
                "enum": ["loopback", "two_hosts"],
                "description": "\"loopback\" (the default): every side in one network namespace, over its loopback. \"two_hosts\": the client on a host of its own (198.18.0.1), joined to the server's (198.18.0.2) by a veth pair; a bare port means the server's host; each side's packets leave one host and arrive at the other, and faults act where they arrive. Client and server scripts only, no program under test yet.",
            },
            "program": program("The program under test of this case, instead of the suite's."),
            "client": side_script(Side::Client, "The client's script: its steps, in order. The client connects; it may not listen or accept."),
            "server": side_script(Side::Server, "The server's script: its steps, in order. The server listens and accepts; it may not connect."),
            "proxy": {
                "type": "array",
                "minItems": 1,
                "description": "A middle peer's script (S12's proxy, or S15's server with an upstream): it accepts the client's connection and connects to the server, so its steps on a connection say which with `on`.",
                "items": {
                    "$ref": "#/$defs/step",
                    "not": {
                        "anyOf": [
                            { "enum": catalog().filter(|d| d.bare && d.on_connection).map(|d| d.keyword).collect::<Vec<_>>() },
                            {
                                "type": "object",
                                "anyOf": catalog().filter(|d| d.on_connection).map(|d| json!({ "required": [d.keyword] })).collect::<Vec<_>>(),
                                "not": { "required": ["on"] },
                            },
                        ],
                    },
                },
            },
        },
        "required": ["name"],
        "anyOf": [
            { "required": ["client"] },
            { "required": ["server"] },
            { "required": ["proxy"] },
        ],
        "additionalProperties": false,
        "items": taplo_index("case"),
    })
}

/// A `[[sweep]]` table.
fn sweep() -> Value {
    let named: Vec<&str> = Phase::NAMED.iter().map(|(name, _)| *name).collect();
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let counts = json!({
        "type": "array",
        "minItems": 1,
        "items": { "type": "integer", "minimum": 1 },
    });
    json!({
        "type": "object",
        "description": "One request, hung up at every phase in every way: a case per (phase, kind) cell, each keeping the checks of `keep`, against the suite's program (which plays the server).",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]+$",
                "description": "The sweep's name: letters, digits, `_` and `-`. Its cells are listed as `<suite>::<name>::<phase>::<kind>`.",
            },
            "description": {
                "type": "string",
                "description": "What the sweep shows; shown in reports.",
            },
            "request": {
                "type": "string",
                "minLength": 1,
                "description": "The text the client sends (`\\r\\n` for HTTP's line ends).",
            },
            "phases": {
                "type": "array",
                "minItems": 1,
                "description": "Where the client hangs up: `syn_sent` (its SYN answered by a lost SYN|ACK), `queued` (the program paused, the connection and request waiting in its accept queue), `connected`, `{ request_bytes = [k, ...] }` (or `\"every\"`), `request_sent`, `first_byte`, `headers` (read up to `\\r\\n\\r\\n`), `{ response_bytes = [k, ...] }`, `{ chunks = N }` (an HTTP response read through the end of each of its first N chunks: `chunk_1` ... `chunk_N`), `{ body_bytes = [k, ...] }` or `{ body_bytes = { count = N, of = BYTES } }` (through its headers and k bytes of body), `shutdown_idle` and `shutdown_streaming` (the program told to stop with the connection idle, or mid-response).",
                "items": {
                    "anyOf": [
                        { "enum": named },
                        {
                            "type": "object",
                            "properties": {
                                "request_bytes": {
                                    "description": "After these many bytes of the request (each below its length), or \"every\".",
                                    "anyOf": [counts.clone(), { "const": "every" }],
                                },
                            },
                            "required": ["request_bytes"],
                            "additionalProperties": false,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "response_bytes": described(counts.clone(), "After these many bytes of the response, read exactly."),
                            },
                            "required": ["response_bytes"],
                            "additionalProperties": false,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "chunks": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "maximum": MAX_GENERATED_CASES,
                                    "description": "A phase after each of the first N chunks of the HTTP response's chunked body (`chunk_1` ... `chunk_N`), read exactly through each chunk's end.",
                                },
                            },
                            "required": ["chunks"],
                            "additionalProperties": false,
                        },
                        {
                            "type": "object",
                            "properties": {
                                "body_bytes": {
                                    "description": "After these many bytes of the HTTP response's body (after its headers' blank line, read exactly), or `{ count = N, of = BYTES }`: N offsets evenly spaced up to BYTES, the i-th BYTES * i / N rounded down.",
                                    "anyOf": [
                                        counts,
                                        {
                                            "type": "object",
                                            "properties": {
                                                "count": { "type": "integer", "minimum": 1, "maximum": MAX_GENERATED_CASES, "description": "How many offsets (at most `of`)." },
                                                "of": { "type": "integer", "minimum": 1, "description": "The last offset, in bytes of body." },
                                            },
                                            "required": ["count", "of"],
                                            "additionalProperties": false,
                                        },
                                    ],
                                },
                            },
                            "required": ["body_bytes"],
                            "additionalProperties": false,
                        },
                    ],
                },
            },
            "kinds": {
                "description": "How the client hangs up, or \"all\": `close` (FIN, or RST with unread data), `abort` (SO_LINGER 0), `timeout` (reads with `hold` as the per-read timeout until one expires, then closes), `half_close` (shutdown write, reads for `hold`), `stop_reading` (for `hold`, then closes), `vanish` (its packets lost from then on), `vanish_then_reset` (lost, its socket gone, back after `hold` to answer with RST), `reject` (the network answers the program with a reset).",
                "anyOf": [
                    { "type": "array", "minItems": 1, "uniqueItems": true, "items": { "enum": kinds } },
                    { "const": "all" },
                ],
            },
            "hold": described(duration(), "How long a kind waits (300ms unless set)."),
            "wait": described(duration(), "How long a phase's read may wait for the response to reach it (5s unless set)."),
            "keep": {
                "type": "array",
                "minItems": 1,
                "description": "The checks every cell must keep after its hang-up, as client steps: `released`, `log`, `syscall`, `state`...",
                "items": { "$ref": "#/$defs/step" },
            },
            "errnos": {
                "type": "array",
                "uniqueItems": true,
                "description": "An invariant every cell keeps: the program's traced socket calls on the cell's connection fail only with these errnos (EAGAIN and EINTR always may), checked after `keep`; a call that failed otherwise fails the cell, named in its evidence. Needs `trace` (its default).",
                "items": { "enum": Errno::known_names().collect::<Vec<_>>(), "description": "An errno name." },
            },
            "serving": {
                "type": "object",
                "description": "After every cell, a fresh connection sends the request and reads the response up to `until`: the program still serves.",
                "properties": {
                    "until": {
                        "description": "Where the fresh response ends: a byte count or text, as `recv_until` takes it.",
                        "anyOf": [{ "type": "integer", "minimum": 1 }, { "type": "string", "minLength": 1 }],
                    },
                    "matches": { "type": "string", "description": "A regular expression the response must match." },
                    "within": described(duration(), "How long each read may wait (5s unless set)."),
                },
                "required": ["until"],
                "additionalProperties": false,
            },
            "trace": {
                "type": "boolean",
                "description": "Trace the program's socket calls in every cell, so each names the first that failed (true unless set).",
            },
            "deadline": described(duration(), "Each cell's deadline (the suite's unless set)."),
            "sysctl": sysctls("Per-namespace sysctls of the cells that start a program of their own (faults, signals): a suite-scoped program's namespace has the suite's."),
        },
        "required": ["name", "request", "phases", "kinds"],
        "additionalProperties": false,
        "items": taplo_index("sweep"),
    })
}

/// `items` naming the def it sits on, on the two defs that are array
/// items (a case, a step). It validates nothing (`items` applies to arrays
/// and neither is one); it is there for taplo's LSP, which looks a key up
/// under a path that has every array index twice: `lookup_keys` in
/// `crates/taplo-lsp/src/query.rs` appends the last index of each array it
/// passes to keys that already hold the item's own index, so the schema
/// walk (`Schemas::collect_schemas` in `crates/taplo-common/src/schema`)
/// takes one index through the array's `items` and the second through
/// this. Without it taplo completes and describes nothing inside a case or
/// a step, whatever the step's shape.
fn taplo_index(def: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{def}") })
}

/// A step: a bare action name, or a table with exactly one action key plus
/// the modifiers that action takes.
///
/// Shaped for taplo's completion and hover (see `tests/schema.rs`, which
/// walks it the way taplo does, and `tests/editor.rs`, which asks taplo):
/// taplo offers the `properties` of every schema it reaches at the step,
/// following `$ref` and every `oneOf`, `anyOf` and `allOf` branch (each
/// branch then shows as a nameless entry, and `allOf` hides the schema it
/// sits on), and ignores `if`, `then`, `else` and `not`. So every key is
/// listed once, with its description, under `properties` of the step itself,
/// and the rules sit where taplo does not look and its draft 7 validator
/// still checks them: a string must be a bare action (`then`); a table goes
/// down a chain of `if` (it holds this action) / `then` (its keys are this
/// action and the modifiers it takes) / `else` (the next action), whose
/// last `else` requires an action. No action, two actions, or a stray
/// modifier then fail.
fn step() -> Value {
    let properties: Map<String, Value> = step_properties()
        .into_iter()
        .map(|(key, schema)| (key.to_string(), schema))
        .collect();
    let no_action = json!({
        "anyOf": catalog().map(|d| json!({ "required": [d.keyword] })).collect::<Vec<_>>(),
    });
    let tables = catalog().rev().fold(no_action, |otherwise, def| {
        json!({
            "if": { "required": [def.keyword] },
            "then": action_rules(def),
            "else": otherwise,
        })
    });
    let bare: Vec<&str> = catalog().filter(|d| d.bare).map(|d| d.keyword).collect();
    let bare_words: Vec<String> = catalog()
        .filter(|d| d.bare)
        .map(|d| format!("\"{}\": {}", d.keyword, d.summary))
        .collect();
    json!({
        "description": format!("One step of a side's script: what to do and, optionally, what must come of it. A table with exactly one action key, like `{{ connect = 8080 }}`, or the name of an action without arguments: {}.", bare.join(", ")),
        "type": ["object", "string"],
        "properties": properties,
        "additionalProperties": false,
        "items": taplo_index("step"),
        "if": { "type": "string" },
        "then": {
            "enum": bare,
            "description": format!("An action without arguments. {}", bare_words.join("; ")),
        },
        "else": tables,
    })
}

/// What a step table with this action must hold: no key but the action
/// and the modifiers it takes, and what the action itself requires.
fn action_rules(def: &ActionDef) -> Value {
    let mut keys = vec![def.keyword];
    keys.extend(def.all_modifiers());
    let mut rules = json!({ "propertyNames": { "enum": keys } });
    if let Some(step_rules) = def.step_rules {
        step_rules(&mut rules);
    }
    rules
}

/// Every key a step table may hold, actions first, with its schema: the
/// shape of each value is the schema's own, the words are the catalog's.
/// Each is written out in full rather than as a `$ref`: taplo follows a
/// `$ref` and shows the description of the schema it names, dropping the
/// one beside it.
fn step_properties() -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for def in catalog() {
        let mut description = format!("{} ({}).", capitalised(def.summary), def.sides_in_words());
        if !def.modifiers.is_empty() {
            let modifiers: Vec<String> = def
                .modifiers
                .iter()
                .map(|m| match m.default {
                    Some(default) => format!("`{}` (`{default}` by default)", m.keyword),
                    None => format!("`{}`", m.keyword),
                })
                .collect();
            description.push_str(&format!(" Modifiers: {}.", modifiers.join(", ")));
        }
        out.push((def.keyword, described((def.value_schema)(), &description)));
    }
    for def in MODIFIERS {
        let description = format!("{}.", capitalised(def.summary));
        out.push((def.keyword, described((def.schema)(), &description)));
    }
    out
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `value` with `description` put before what it already says of itself.
fn described(mut value: Value, description: &str) -> Value {
    let description = match value.get("description").and_then(Value::as_str) {
        Some(own) => format!("{description} {own}"),
        None => description.to_string(),
    };
    value["description"] = json!(description);
    value
}

/// The timing tolerance of a suite or a case.
/// A `[program]` table: the program under test, which plays the server.
fn program(description: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("{description} It runs in the case's network namespace, plays the server (or, with `role = \"client\"`, the client; the case then has no script for that side), and is stopped when the scripts are done. Its command may use {{port}}, {{host}}, {{artifacts}}, {{suite_dir}}, {{bin:NAME}}, {{fixture:NAME}} and {{env:NAME}}."),
        "properties": {
            "role": {
                "enum": ["server", "client"],
                "description": "The side it plays: \"server\" (the default: it listens on `port` and the scripts connect) or \"client\" (it is started once a script listens on `port`, and connects there).",
            },
            "run": command("The command and its arguments, e.g. [\"./server\", \"--port\", \"{port}\"]."),
            "port": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "description": "As the server, the port it listens on, on 127.0.0.1 (the scripts connect to it); as the client, the port it connects to. State checks of its side find its end of the scripts' connections.",
            },
            "ready": {
                "type": "string",
                "description": "A regular expression: ready once a line of its output matches. Without it, ready once the kernel lists its listener on `port`.",
            },
            "within": described(duration(), "How long it may take to become ready (10s by default)."),
            "stop": {
                "type": "string",
                "pattern": "^SIG[A-Z0-9]+$",
                "description": "The signal that asks it to stop when the case ends (SIGTERM by default).",
            },
            "grace": described(duration(), "How long it may take to stop before it is killed and the case fails (2s by default)."),
            "env": environment("Variables set for it, besides the environment it inherits."),
            "cwd": {
                "type": "string",
                "minLength": 1,
                "pattern": NO_NUL,
                "description": "Where it runs (the suite file's folder by default).",
            },
            "requires": {
                "type": "array",
                "items": { "type": "string", "pattern": NO_NUL },
                "description": "What it needs: commands on PATH (a runtime like `node`), or, for an entry with a space, a shell command line that must succeed (`python3 -c 'import aiohttp'`): where one is missing its cases are skipped, saying so, unless CI is set.",
            },
            "install": {
                "type": "string",
                "description": "How to install what `requires` names, for the skip message.",
            },
            "compare": {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9._-]+$",
                            "description": "The version's name: each case runs as `<case>@<name>`.",
                        },
                        "run": command("This version's command, instead of the program's `run`."),
                        "env": environment("Variables set for this version, over the program's `env`."),
                    },
                    "required": ["name"],
                    "additionalProperties": false,
                },
                "description": "Two versions of the program (the one compared against first; the same name twice compares a version with itself): every case runs against each, as `<case>@<name>` (`#2`, `#3`... after a name's first run), the one compared against `baseline_runs` times, and `hangup run` ends with what changed between them, case by case (as `hangup diff` would), leaving out as noise what differs between the runs of the one compared against too; a difference not listed in `--accept` fails the run.",
            },
            "baseline_runs": {
                "type": "integer",
                "minimum": 1,
                "maximum": crate::suite::limits::MAX_BASELINE_RUNS,
                "description": "With `compare`: how many times the version compared against runs (2 by default). What differs between its own runs is noise: set aside, and counted, when the versions are compared.",
            },
            "mask": {
                "type": "array",
                "maxItems": crate::suite::limits::MAX_MASKS,
                "items": { "type": "string", "minLength": 1 },
                "description": "Regular expressions over the program's output lines, for comparing two runs (`compare`, `hangup diff`): what one matches reads as `#` (before numbers and ids are masked), and a line one matches whole is not compared. For what varies by design: a request id, a line printed or not by timing.",
            },
            "scope": {
                "enum": ["case", "suite"],
                "description": "\"case\" (the default): a fresh program in a fresh namespace for every case. \"suite\" (the suite's `[program]` only, as the server): started once and shared by every case that uses it, for programs that take seconds to start; those cases run one at a time in its namespace, cannot set sysctls of their own or signal it, and each sees only its own connections, output and calls.",
            },
        },
        "required": ["run", "port"],
        "additionalProperties": false,
    })
}

/// A string the kernel reads as a C string (a word of a command, a
/// variable, a folder): no NUL byte, which would end it early.
const NO_NUL: &str = "^[^\\u0000]*$";

/// A command as `execve` takes it: a first word that is not empty, and
/// no NUL byte in any word.
fn command(description: &str) -> Value {
    json!({
        "type": "array",
        "minItems": 1,
        "prefixItems": [{ "type": "string", "minLength": 1, "pattern": NO_NUL }],
        "items": { "type": "string", "pattern": NO_NUL },
        "description": description,
    })
}

/// An `env` table: `NAME=value` pairs as `execve` takes them, so a name
/// that is not empty and has no `=`, and no NUL byte anywhere.
fn environment(description: &str) -> Value {
    json!({
        "type": "object",
        "propertyNames": { "pattern": "^[^=\\u0000]+$" },
        "additionalProperties": { "type": "string", "pattern": NO_NUL },
        "description": description,
    })
}

/// The `sysctl` table: exactly the keys the sandbox allows
/// ([`ALLOWED_SYSCTLS`]), each with what it is for, so an editor completes
/// them and flags any other key.
fn sysctls(whose: &str) -> Value {
    let value = json!({
        "type": ["integer", "string"],
        "pattern": "^-?[A-Za-z0-9_]+$",
    });
    let properties: Map<String, Value> = ALLOWED_SYSCTLS
        .iter()
        .map(|(key, what)| {
            let what = format!("{}: a number, or a plain word.", capitalised(what));
            ((*key).to_owned(), described(value.clone(), &what))
        })
        .collect();
    json!({
        "type": "object",
        "description": format!("{whose} Applied before any socket exists, so slow kernel timers (FIN_WAIT2 timeout, SYN retries) are shortened instead of waited out. Only the listed keys, each kept per network namespace by the kernel with no effect on the host."),
        "properties": properties,
        "additionalProperties": false,
    })
}

fn tolerance(description: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("{description} How far a measured duration may be from the expected one: max(floor, percent of the expected duration), either way. Widened, never narrowed, by HANGUP_TOLERANCE_FLOOR and HANGUP_TOLERANCE_PERCENT."),
        "properties": {
            "floor": described(duration(), "The least slack, whatever the interval (50ms by default)."),
            "percent": {
                "type": "integer",
                "minimum": 0,
                "maximum": u32::MAX,
                "description": "Slack as a share of the expected interval, in percent (25 by default).",
            },
        },
        "additionalProperties": false,
    })
}

/// A side's script: the steps its side may take (the catalog's `sides`),
/// and no `on`, which only the proxy's steps have.
fn side_script(side: Side, description: &str) -> Value {
    let refused: Vec<Value> = catalog()
        .filter(|def| !def.sides.contains(&side))
        .flat_map(|def| {
            let mut refused = vec![json!({ "type": "object", "required": [def.keyword] })];
            if def.bare {
                refused.push(json!({ "const": def.keyword }));
            }
            refused
        })
        .chain(std::iter::once(
            json!({ "type": "object", "required": ["on"] }),
        ))
        .collect();
    json!({
        "type": "array",
        "minItems": 1,
        "description": description,
        "items": {
            "$ref": "#/$defs/step",
            "not": { "anyOf": refused },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::action;

    /// The committed copy editors read; regenerate it when the format changes.
    #[test]
    fn committed_schema_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/hangup-suite.schema.json"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == format!("{}\n", json_schema()),
            "schema/hangup-suite.schema.json is out of date with suite::schema::json_schema(); \
             run `cargo run -p hangup -- schema > schema/hangup-suite.schema.json` from the \
             repository root and commit the result"
        );
    }

    #[test]
    fn every_action_and_modifier_of_the_catalog_is_a_property() {
        let keys: Vec<&str> = step_properties().into_iter().map(|(k, _)| k).collect();
        for def in catalog() {
            assert!(keys.contains(&def.keyword), "{}", def.keyword);
            for modifier in def.all_modifiers() {
                assert!(keys.contains(&modifier), "{modifier} of {}", def.keyword);
                assert!(
                    action::definition(modifier).is_none(),
                    "{modifier} is an action"
                );
            }
        }
        assert_eq!(keys.len(), catalog().count() + MODIFIERS.len());
    }

    #[test]
    fn every_property_has_a_description() {
        fn walk(value: &Value, path: &str, missing: &mut Vec<String>) {
            let Value::Object(map) = value else { return };
            if let Some(Value::Object(props)) = map.get("properties") {
                for (key, prop) in props {
                    let is_forbidden = prop == &Value::Bool(false);
                    if !is_forbidden && prop.get("description").is_none() {
                        missing.push(format!("{path}/{key}"));
                    }
                }
            }
            for (key, child) in map {
                match child {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            walk(item, &format!("{path}/{key}/{i}"), missing);
                        }
                    }
                    _ => walk(child, &format!("{path}/{key}"), missing),
                }
            }
        }
        let mut missing = Vec::new();
        walk(&schema(), "", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:?}");
    }
}
