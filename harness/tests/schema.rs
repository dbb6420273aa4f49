//! The published JSON Schema against real suites and against the parser.
//!
//! Every suite in `suites/`, `harness/tests/broken/` and
//! `harness/tests/versions/` must validate (those are the files editors
//! open with the schema), and for a catalog of single
//! steps the schema must agree with `parse_suite`: a step the parser rejects
//! must not pass the schema, and one it accepts must pass, except for the
//! few deviations `suite::schema` documents.

use std::path::{Path, PathBuf};

use hangup::suite::{parse_suite, schema::json_schema};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&json_schema()).expect("the schema is JSON");
    jsonschema::meta::validate(&schema).expect("the schema is a valid draft 2020-12 schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

/// TOML as the editor sees it: the document converted to JSON.
fn to_json(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).expect("valid TOML");
    serde_json::to_value(value).expect("TOML without datetimes converts to JSON")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn suite_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no suites in {}", dir.display());
    files
}

#[test]
fn every_suite_validates_against_the_schema_and_names_it() {
    let validator = validator();
    for (dir, directive) in [
        ("../suites", "#:schema ../schema/hangup-suite.schema.json"),
        (
            "tests/broken",
            "#:schema ../../../schema/hangup-suite.schema.json",
        ),
        (
            "tests/versions",
            "#:schema ../../../schema/hangup-suite.schema.json",
        ),
    ] {
        for path in suite_files(dir) {
            let text = std::fs::read_to_string(&path).expect("readable suite");
            assert_eq!(
                text.lines().next(),
                Some(directive),
                "{}: the first line names the schema for taplo",
                path.display()
            );
            // The directive must point at the real file.
            let target = path
                .parent()
                .expect("a folder")
                .join(directive.trim_start_matches("#:schema "));
            assert!(target.is_file(), "{} points nowhere", path.display());
            if let Err(err) = parse_suite(&path, text.as_bytes()) {
                panic!("the parser rejects {}:\n{err}", path.display());
            }
            let problems = errors(&validator, &to_json(&text));
            assert!(
                problems.is_empty(),
                "{} fails the schema: {problems:#?}",
                path.display()
            );
        }
    }
}

/// A one-case suite with one step on one side.
/// The other sides get a script each, one that marks the label `x`, so
/// that what is checked across scripts (a state check needs its side, a
/// `wait` needs a `mark`; no JSON Schema can say either) holds for the step.
fn suite_with(side: &str, step: &str) -> String {
    let others: String = ["client", "server", "proxy"]
        .into_iter()
        .filter(|other| *other != side)
        .map(|other| format!("{other} = [{{ mark = \"x\" }}]\n"))
        .collect();
    format!("[[case]]\nname = \"c\"\n{others}{side} = [\n  {step},\n]\n")
}

/// What the parser and the schema each say about one step.
fn verdicts(validator: &jsonschema::Validator, side: &str, step: &str) -> (bool, bool) {
    let text = suite_with(side, step);
    let parser = parse_suite(Path::new("step.toml"), text.as_bytes()).is_ok();
    let schema = validator.is_valid(&to_json(&text));
    (parser, schema)
}

/// The four negative checks the schema exists for: each fails the parser
/// too, and each must be flagged in the editor.
#[test]
fn schema_rejects_what_the_parser_rejects() {
    let validator = validator();
    for (side, step) in [
        // Two actions in one step.
        ("client", r#"{ connect = 8080, send = "hi" }"#),
        ("client", r#"{ recv = true, close = true }"#),
        // An unknown errno.
        ("client", r#"{ recv = true, expect = "ECONRESET" }"#),
        (
            "client",
            r#"{ recv = true, expect = ["EPIPE", "ENOEXEC"] }"#,
        ),
        // An unknown state.
        ("client", r#"{ state = { client = "TIME_WAITING" } }"#),
        // Bad durations.
        ("client", r#"{ sleep = "5" }"#),
        ("client", r#"{ sleep = "5 parsecs" }"#),
        ("client", r#"{ sleep = "-1s" }"#),
        ("client", r#"{ sleep = 5 }"#),
    ] {
        assert_eq!(
            verdicts(&validator, side, step),
            (false, false),
            "{side}: {step}"
        );
    }
}

/// One step per line of the format's rules: where the parser and the schema
/// agree. `true` when both accept it.
const AGREED: &[(&str, &str, bool)] = &[
    // Bare steps.
    ("server", r#""accept""#, true),
    ("client", r#""recv""#, true),
    ("client", r#""close""#, true),
    ("client", r#""abort""#, true),
    ("client", r#""connect""#, false),
    ("client", r#""sleep""#, false),
    // Actions and their arguments.
    ("server", "{ listen = 8080 }", true),
    ("server", r#"{ listen = "127.0.0.1:8080" }"#, true),
    ("server", r#"{ listen = "127.1.2.3:8080" }"#, true),
    ("server", r#"{ listen = "[::1]:8080" }"#, true),
    ("server", r#"{ listen = "[0:0:0:0:0:0:0:1]:8080" }"#, true),
    ("server", r#"{ listen = "10.0.0.1:8080" }"#, false),
    ("server", r#"{ listen = "[::2]:8080" }"#, false),
    ("server", r#"{ listen = "localhost:8080" }"#, false),
    ("server", r#"{ listen = "127.0.0.1:65536" }"#, false),
    ("server", "{ listen = 0 }", false),
    ("server", r#"{ listen = "127.0.0.1:0" }"#, false),
    ("server", r#"{ listen = "[::1]:0" }"#, false),
    ("server", r#"{ listen = "127.0.0.1:00" }"#, false),
    ("server", r#"{ listen = "127.0.0.1:08080" }"#, true),
    ("client", "{ connect = 0 }", false),
    ("client", r#"{ connect = "127.0.0.1:0" }"#, false),
    ("server", "{ listen = 65536 }", false),
    ("server", "{ listen = 8080, backlog = 1 }", true),
    ("server", "{ listen = 8080, backlog = -1 }", false),
    ("server", "{ accept = true, timeout = \"1s\" }", true),
    ("server", "{ accept = false }", false),
    ("client", "{ connect = 8080, from = 40000 }", true),
    ("client", "{ connect = 8080, from = 0 }", false),
    ("client", "{ connect = 8080, from = 70000 }", false),
    ("client", r#"{ send = "hi", repeat = 3 }"#, true),
    ("client", "{ send = 100 }", true),
    ("client", "{ send = 0 }", false),
    ("client", r#"{ send = "hi", repeat = 1 }"#, true),
    ("client", r#"{ send = "hi", repeat = 0 }"#, false),
    ("client", "{ send = 100, repeat = 3 }", false),
    ("client", "{ recv = true, max = 1 }", true),
    ("client", "{ recv = true, max = 0 }", false),
    ("client", "{ recv_until = 10 }", true),
    ("client", r#"{ recv_until = "\r\n" }"#, true),
    ("client", r#"{ recv_until = "" }"#, false),
    ("client", "{ recv_until = 0 }", false),
    ("client", r#"{ shutdown = "write" }"#, true),
    ("client", r#"{ shutdown = "sideways" }"#, false),
    ("client", r#"{ sleep = "100ms" }"#, true),
    ("client", r#"{ mark = "x" }"#, true),
    (
        "client",
        r#"{ wait = "x", timeout = "1s", expect = "ok" }"#,
        true,
    ),
    // Socket options.
    ("client", r#"{ set = { linger = "off" } }"#, true),
    (
        "client",
        r#"{ set = { linger = "0s", nodelay = true } }"#,
        true,
    ),
    ("client", r#"{ set = { linger = "on" } }"#, false),
    ("client", r#"{ set = { linger = "5s" } }"#, true),
    ("client", r#"{ set = { linger = "0" } }"#, true),
    ("client", r#"{ set = { linger = "1m 30s" } }"#, true),
    ("client", r#"{ set = { linger = "500ms" } }"#, false),
    ("client", r#"{ set = { linger = "1.5s" } }"#, false),
    ("client", r#"{ set = { linger = "1s 500ms" } }"#, false),
    ("client", r#"{ set = { linger = " 5s" } }"#, false),
    ("client", "{ set = { rcvbuf = 8192, sndbuf = 8192 } }", true),
    ("client", "{ set = { keepalive = 1 } }", false),
    ("client", "{ set = { cork = true } }", false),
    ("client", r#"{ set = { user_timeout = "2s" } }"#, true),
    ("client", r#"{ set = { user_timeout = "0s" } }"#, true),
    (
        "client",
        r#"{ set = { user_timeout = "1.5s 250ms" } }"#,
        true,
    ),
    ("client", r#"{ set = { user_timeout = "1.5ms" } }"#, false),
    ("client", r#"{ set = { user_timeout = "2" } }"#, false),
    ("client", r#"{ set = { user_timeout = 2000 } }"#, false),
    ("client", "{ set = { notsent_lowat = 16384 } }", true),
    ("client", "{ set = { notsent_lowat = -1 } }", false),
    ("client", "{ set = { notsent_lowat = 2147483648 } }", false),
    ("client", r#"{ set = { congestion = "reno" } }"#, true),
    ("client", r#"{ set = { congestion = "" } }"#, false),
    (
        "client",
        r#"{ set = { congestion = "sixteen_letters_" } }"#,
        false,
    ),
    ("client", r#"{ set = { congestion = "re no" } }"#, false),
    ("client", "{ set = { nonblocking = true } }", true),
    ("client", r#"{ set = { nonblocking = "yes" } }"#, false),
    (
        "client",
        r#"{ set = { congestion = "no_such_cc" }, expect = "ENOENT" }"#,
        true,
    ),
    // States.
    (
        "client",
        r#"{ state = { client = "TIME_WAIT", server = "gone" }, within = "1s" }"#,
        true,
    ),
    ("client", "{ state = {} }", false),
    ("client", r#"{ state = { proxy = "CLOSE" } }"#, false),
    ("client", r#"{ state = { proxy_client = "CLOSE" } }"#, true),
    // Expectations.
    ("client", r#"{ recv = true, expect = "EOF" }"#, true),
    (
        "client",
        r#"{ recv = true, expect = ["ok", "ECONNRESET"] }"#,
        true,
    ),
    ("client", "{ recv = true, expect = [] }", false),
    (
        "client",
        r#"{ recv = true, bytes = 5, after = "1s", longer_than = "1s" }"#,
        true,
    ),
    // Modifiers on actions that do not take them.
    ("client", r#"{ sleep = "1s", timeout = "1s" }"#, false),
    ("client", r#"{ sleep = "1s", expect = "ok" }"#, false),
    ("client", r#"{ mark = "x", bytes = 1 }"#, false),
    (
        "client",
        r#"{ state = { client = "CLOSE" }, expect = "ok" }"#,
        false,
    ),
    ("client", r#"{ recv = true, within = "1s" }"#, false),
    ("client", r#"{ send = "x", max = 1 }"#, false),
    ("client", r#"{ connect = 8080, backlog = 1 }"#, false),
    ("client", r#"{ close = true, timeout = "1s" }"#, false),
    // No action, an unknown key.
    ("client", r#"{ timeout = "1s" }"#, false),
    ("client", "{ }", false),
    ("client", "{ hangup = true }", false),
    // Sides.
    ("client", "{ listen = 8080 }", false),
    ("client", "{ accept = true }", false),
    ("client", r#""accept""#, false),
    ("server", "{ connect = 8080 }", false),
    // The proxy: both ends, and `on` to say which connection.
    ("proxy", "{ listen = 8081 }", true),
    ("proxy", r#""accept""#, true),
    ("proxy", "{ connect = 8080 }", true),
    ("proxy", r#"{ send = "x", on = "server" }"#, true),
    (
        "proxy",
        r#"{ recv = true, on = "client", expect = "EOF" }"#,
        true,
    ),
    ("proxy", r#"{ close = true, on = "client" }"#, true),
    (
        "proxy",
        r#"{ set = { linger = "0s" }, on = "server" }"#,
        true,
    ),
    ("proxy", r#"{ send = "x" }"#, false),
    ("proxy", r#""close""#, false),
    ("proxy", r#""recv""#, false),
    ("proxy", r#"{ set = { nodelay = true } }"#, false),
    ("proxy", r#"{ send = "x", on = "upstream" }"#, false),
    ("proxy", r#"{ sleep = "1s", on = "client" }"#, false),
    ("proxy", r#"{ connect = 8080, on = "server" }"#, false),
    ("client", r#"{ send = "x", on = "server" }"#, false),
    ("server", r#"{ close = true, on = "client" }"#, false),
    (
        "proxy",
        r#"{ state = { proxy_client = "FIN_WAIT2", proxy_server = "gone" } }"#,
        true,
    ),
    // Durations: humantime spans, fractions on any unit.
    ("client", r#"{ sleep = "0" }"#, true),
    ("client", r#"{ sleep = "1s 500ms" }"#, true),
    ("client", r#"{ sleep = "1s500ms" }"#, true),
    ("client", r#"{ sleep = "1.5s" }"#, true),
    ("client", r#"{ sleep = "1.5 s" }"#, true),
    ("client", r#"{ sleep = "0.5s" }"#, true),
    ("client", r#"{ sleep = ".5s" }"#, false),
    ("client", r#"{ sleep = "2m" }"#, true),
    ("client", r#"{ sleep = "1.5m" }"#, true),
    ("client", r#"{ sleep = "1.5h" }"#, true),
    ("client", r#"{ sleep = "250 msec" }"#, true),
    ("client", r#"{ sleep = "1 hour 2 minutes" }"#, true),
    ("client", r#"{ sleep = "10us" }"#, true),
    ("client", r#"{ sleep = "10µs" }"#, true),
    ("client", r#"{ sleep = "1.5sec" }"#, true),
    ("client", r#"{ sleep = "" }"#, false),
    ("client", r#"{ sleep = "s" }"#, false),
    ("client", r#"{ sleep = "1.s" }"#, false),
    ("client", r#"{ sleep = "1.5e3s" }"#, false),
    ("client", r#"{ sleep = "1." }"#, false),
    ("client", r#"{ sleep = "1.5ns" }"#, false),
    ("client", r#"{ sleep = "1ms." }"#, false),
    ("client", r#"{ sleep = "1S" }"#, false),
    ("client", r#"{ sleep = "1 s x" }"#, false),
    ("client", r#"{ sleep = "1.5ms" }"#, true),
    ("client", r#"{ sleep = "1.5secs" }"#, true),
    ("client", r#"{ sleep = "1.5s 200ms" }"#, true),
    ("client", r#"{ sleep = "1s 0.5ms" }"#, true),
    ("client", r#"{ sleep = "1.99999999m" }"#, true),
    ("client", r#"{ sleep = "1.999999999m" }"#, false),
    // No spaces around the value, whether or not it has a unit.
    ("client", r#"{ sleep = "0.5ms " }"#, false),
    ("client", r#"{ sleep = " 1s" }"#, false),
    ("client", r#"{ sleep = " 0" }"#, false),
    ("client", r#"{ sleep = "0 " }"#, false),
    // The steps added with the action catalog.
    ("client", r#""so_error""#, true),
    (
        "client",
        r#"{ so_error = true, expect = "ECONNREFUSED" }"#,
        true,
    ),
    (
        "client",
        r#"{ poll = "in", timeout = "1s", revents = [] }"#,
        true,
    ),
    (
        "client",
        r#"{ poll = ["in", "rdhup"], revents = ["in", "rdhup", "hup"] }"#,
        true,
    ),
    ("client", r#"{ poll = ["in", "hup"] }"#, false),
    ("client", r#"{ poll = "readable" }"#, false),
    ("client", r#"{ recv = true, revents = ["in"] }"#, false),
    (
        "client",
        r#"{ connect = 8080, nonblocking = true, again = true }"#,
        true,
    ),
    ("client", r#"{ send = 1, again = true }"#, false),
    (
        "client",
        r#"{ loop = [{ send = 1 }, { sleep = "1ms" }], times = 3, until = "EPIPE" }"#,
        true,
    ),
    (
        "client",
        r#"{ loop = [{ send = 1 }], times = 3, until = ["EPIPE", "ECONNRESET"] }"#,
        true,
    ),
    ("client", r#"{ loop = [{ send = 1 }] }"#, false),
    ("client", r#"{ loop = [{ send = 1 }], times = 0 }"#, false),
    ("client", r#"{ loop = [], times = 2 }"#, false),
    (
        "client",
        r#"{ loop = [{ loop = [{ send = 1 }], times = 2 }], times = 2 }"#,
        false,
    ),
    (
        "client",
        r#"{ loop = [{ sleep = "fast" }], times = 2 }"#,
        false,
    ),
    ("client", r#"{ send = 1, times = 2 }"#, false),
    (
        "client",
        r#"{ recv = true, matches = "^HTTP/1\\.1 200" }"#,
        true,
    ),
    (
        "client",
        r#"{ recv_until = "\r\n\r\n", matches = "502" }"#,
        true,
    ),
    ("client", r#"{ send = 1, matches = "x" }"#, false),
    // Sysctls: checked as a whole case below.
];

#[test]
fn schema_agrees_with_the_parser_on_single_steps() {
    let validator = validator();
    let mut disagreements = Vec::new();
    for (side, step, accepted) in AGREED {
        let (parser, schema) = verdicts(&validator, side, step);
        if (parser, schema) != (*accepted, *accepted) {
            disagreements.push(format!(
                "{side}: {step}: expected both to {}, parser {}, schema {}",
                if *accepted { "accept" } else { "reject" },
                if parser { "accepts" } else { "rejects" },
                if schema { "accepts" } else { "rejects" },
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

/// Where the schema is knowingly stricter than the parser (documented in
/// `suite::schema`): the editor flags them although the suite runs.
#[test]
fn schema_is_stricter_only_where_documented() {
    let validator = validator();
    for (side, step) in [
        ("client", r#"{ recv = true, expect = "epipe" }"#),
        ("client", r#"{ recv = true, expect = "EWOULDBLOCK" }"#),
        ("client", r#"{ recv = true, expect = "eof" }"#),
        ("client", r#"{ state = { client = "time_wait" } }"#),
        ("client", r#"{ sleep = "1 0s" }"#),
        ("client", r#"{ sleep = "1. 5s" }"#),
        ("client", r#"{ sleep = "1.5000000000s" }"#),
        ("client", r#"{ set = { linger = "1000ms" } }"#),
        ("client", r#"{ set = { linger = "1.5m" } }"#),
    ] {
        assert_eq!(
            verdicts(&validator, side, step),
            (true, false),
            "{side}: {step}"
        );
    }
}

#[test]
fn schema_checks_case_and_suite_keys() {
    let validator = validator();
    let check = |text: &str, accepted: bool| {
        let parser = parse_suite(Path::new("case.toml"), text.as_bytes()).is_ok();
        let schema = validator.is_valid(&to_json(text));
        assert_eq!((parser, schema), (accepted, accepted), "{text}");
    };
    let steps = "client = [\"close\"]";
    check(
        &format!(
            "description = \"d\"\ndeadline = \"5s\"\ntolerance = {{ floor = \"10ms\", percent = 10 }}\n\
             [[case]]\nname = \"a-b_1\"\ndescription = \"d\"\nignore = \"why\"\ndeadline = \"1s\"\n\
             tolerance = {{ percent = 5 }}\nsysctl = {{ \"net.ipv4.tcp_fin_timeout\" = 5, \"net.core.somaxconn\" = \"64\" }}\n{steps}\n"
        ),
        true,
    );
    check(&format!("[[case]]\nname = \"a b\"\n{steps}\n"), false);
    check(&format!("[[case]]\n{steps}\n"), false);
    check("[[case]]\nname = \"a\"\n", false);
    check(
        &format!("[[case]]\nname = \"a\"\nretries = 1\n{steps}\n"),
        false,
    );
    check(
        &format!("timeout = \"1s\"\n[[case]]\nname = \"a\"\n{steps}\n"),
        false,
    );
    // `log` reads the program's output.
    let with_program = "[program]\nrun = [\"./s\"]\nport = 8080\n[[case]]\nname = \"a\"\n";
    check(
        &format!(
            "{with_program}client = [{{ log = \"left\", within = \"1s\" }}, {{ log = \"at \", count = 0 }}, {{ log = \"x\", at_most = 1 }}]\n"
        ),
        true,
    );
    check(
        &format!("{with_program}client = [{{ log = \"x\", count = -1 }}]\n"),
        false,
    );
    check(
        &format!("{with_program}client = [{{ released = true, within = \"1s\" }}]\n"),
        true,
    );
    check(
        &format!("{with_program}client = [{{ released = false }}]\n"),
        false,
    );
    check(
        &format!("{with_program}client = [{{ log = \"x\", timeout = \"1s\" }}]\n"),
        false,
    );
    // A program under test, for the suite or one case.
    check(
        &format!(
            "[program]\nrun = [\"./server\", \"{{port}}\"]\nport = 8080\nready = \"^up\"\nwithin = \"5s\"\n\
             stop = \"SIGINT\"\ngrace = \"1s\"\nenv = {{ A = \"b\" }}\ncwd = \"{{suite_dir}}\"\n\
             [[case]]\nname = \"a\"\n{steps}\n"
        ),
        true,
    );
    check(
        &format!("[[case]]\nname = \"a\"\nprogram = {{ run = [\"./s\"], port = 9000 }}\n{steps}\n"),
        true,
    );
    check(
        &format!("[program]\nrun = [\"./s\"]\n[[case]]\nname = \"a\"\n{steps}\n"),
        false,
    );
    check(
        &format!("[program]\nrun = []\nport = 1\n[[case]]\nname = \"a\"\n{steps}\n"),
        false,
    );
    check(
        &format!("[program]\nrun = [\"./s\"]\nport = 0\n[[case]]\nname = \"a\"\n{steps}\n"),
        false,
    );
    // What `execve` and `chdir` cannot take: an empty command, NUL bytes,
    // a variable's name that is empty or holds `=`.
    for table in [
        "run = [\"\", \"x\"]",
        "run = [\"./s\\u0000\"]",
        "run = [\"./s\", \"a\\u0000b\"]",
        "run = [\"./s\"]\nenv = { \"A=B\" = \"1\" }",
        "run = [\"./s\"]\nenv = { \"\" = \"1\" }",
        "run = [\"./s\"]\nenv = { \"A\\u0000\" = \"1\" }",
        "run = [\"./s\"]\nenv = { A = \"1\\u0000\" }",
        "run = [\"./s\"]\ncwd = \"/tmp\\u0000\"",
        "run = [\"./s\"]\ncwd = \"\"",
        "run = [\"./s\"]\ncompare = [{ name = \"a\", run = [\"\"] }, { name = \"b\", env = { \"X=\" = \"1\" } }]",
    ] {
        check(
            &format!("[program]\n{table}\nport = 1\n[[case]]\nname = \"a\"\n{steps}\n"),
            false,
        );
    }
    check(
        &format!(
            "[program]\nrun = [\"./s\", \"\", \"a=b\"]\nport = 1\nenv = {{ A_1 = \"x=y\", B = \"\" }}\n[[case]]\nname = \"a\"\n{steps}\n"
        ),
        true,
    );
    check(
        &format!(
            "[program]\nrun = [\"./s\"]\nport = 1\nrestart = true\n[[case]]\nname = \"a\"\n{steps}\n"
        ),
        false,
    );
    check("description = \"no cases\"\n", false);
    check("case = []\n", false);
    check("[[case]]\nname = \"a\"\nclient = []\n", false);
    check(
        &format!("[[case]]\nname = \"a\"\n{steps}\nserver = []\n"),
        false,
    );
    check(
        &format!("[[case]]\nname = \"a\"\nsysctl = {{ \"kernel.pid_max\" = 5 }}\n{steps}\n"),
        false,
    );
    check(
        &format!(
            "[[case]]\nname = \"a\"\nsysctl = {{ \"net.ipv4.tcp_syn_retries\" = true }}\n{steps}\n"
        ),
        false,
    );
    check(
        &format!("[[case]]\nname = \"a\"\ntolerance = {{ floor = \"1s\", slack = 1 }}\n{steps}\n"),
        false,
    );
    check(
        &format!("[[case]]\nname = \"a\"\ndeadline = \"soon\"\n{steps}\n"),
        false,
    );
}

/// How taplo's language server (taplo-lsp 0.8, the code of taplo-cli 0.10
/// and of the npm `@taplo/lsp` that VS Code's Even Better TOML runs) finds
/// what to offer at a place in a document, mirrored on the schema so that
/// `cargo test` checks the editor experience without taplo
/// (`tests/editor.rs` asks taplo itself, in CI):
///
/// - [`lookup_keys`](Taplo::lookup_keys) is `lookup_keys` in
///   `crates/taplo-lsp/src/query.rs`: completion and hover on a key look
///   the place up with the last index of every array on the way appended,
///   also where the path already goes on with an item's own index.
/// - [`schemas_at`](Taplo::schemas_at) is `Schemas::collect_schemas` in
///   `crates/taplo-common/src/schema/mod.rs`: it follows a `$ref` (and
///   drops what stands beside it), enters every `oneOf`, `anyOf` and
///   `allOf` branch, keeps the schema itself unless it has an `allOf`,
///   and goes down `items` and `properties` (and `additionalProperties`);
///   `if`, `then`, `else`, `not` and the rest it never reads. Hover shows
///   the `description` of each schema found; value completion offers the
///   `enum` of each (`add_value_completions` in
///   `crates/taplo-lsp/src/handlers/completion.rs`).
/// - [`children`](Taplo::children) is `Schemas::collect_child_schemas`
///   there: key completion offers, under each schema found, every schema
///   it reaches through `$ref` and every `oneOf` and `anyOf` branch that is
///   not composed (exactly one of `allOf`, `oneOf`, `anyOf` and no
///   `properties`), labelled with the keys that lead to it and documented
///   with its `description`; so a branch is an entry of its own, and the
///   schema reached at the place itself is one without a name.
struct Taplo<'a> {
    root: &'a Value,
}

/// A step on a path into the document.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn path(steps: &str) -> Vec<Step> {
    steps
        .split('.')
        .map(|s| match s.parse() {
            Ok(index) => Step::Index(index),
            Err(_) => Step::Key(s.to_string()),
        })
        .collect()
}

impl<'a> Taplo<'a> {
    fn lookup_keys(document: &Value, keys: &[Step]) -> Vec<Step> {
        let mut node = document;
        let mut looked_up = Vec::new();
        for key in keys {
            node = match key {
                Step::Key(k) => &node[k.as_str()],
                Step::Index(i) => &node[*i],
            };
            looked_up.push(key.clone());
            if let Some(items) = node.as_array() {
                looked_up.push(Step::Index(items.len().saturating_sub(1)));
            }
        }
        looked_up
    }

    fn resolve(&self, schema: &'a Value) -> Option<&'a Value> {
        let reference = schema.get("$ref")?.as_str()?;
        let pointer = reference.strip_prefix('#').expect("a local $ref");
        Some(
            self.root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} names nothing")),
        )
    }

    fn schemas_at(&self, schema: &'a Value, path: &[Step], found: &mut Vec<&'a Value>) {
        if !schema.is_object() {
            return;
        }
        if let Some(target) = self.resolve(schema) {
            return self.schemas_at(target, path, found);
        }
        for keyword in ["oneOf", "anyOf", "allOf"] {
            for branch in schema[keyword].as_array().into_iter().flatten() {
                self.schemas_at(branch, path, found);
            }
        }
        let Some((first, rest)) = path.split_first() else {
            if schema.get("allOf").is_none() {
                found.push(schema);
            }
            return;
        };
        match first {
            Step::Key(key) => {
                self.schemas_at(&schema["items"][key.as_str()], rest, found);
                self.schemas_at(&schema["properties"][key.as_str()], rest, found);
                self.schemas_at(&schema["additionalProperties"], rest, found);
                assert!(
                    schema.get("patternProperties").is_none(),
                    "the walk does not model patternProperties"
                );
            }
            Step::Index(index) => match &schema["items"] {
                Value::Array(items) => self.schemas_at(&items[*index], rest, found),
                items => self.schemas_at(items, rest, found),
            },
        }
    }

    fn children(
        &self,
        schema: &'a Value,
        keys: Vec<String>,
        depth: usize,
        offered: &mut Vec<(Vec<String>, &'a Value)>,
    ) {
        if !schema.is_object() || depth == 0 {
            return;
        }
        if let Some(target) = self.resolve(schema) {
            return self.children(target, keys, depth, offered);
        }
        for keyword in ["oneOf", "anyOf"] {
            for branch in schema[keyword].as_array().into_iter().flatten() {
                self.children(branch, keys.clone(), depth, offered);
            }
        }
        let compositions = ["allOf", "oneOf", "anyOf"]
            .iter()
            .filter(|k| schema.get(**k).is_some())
            .count();
        let composed = compositions == 1 && schema.get("properties").is_none();
        // taplo merges the branches of a lone `allOf`; nothing here needs it.
        assert!(
            !(composed && schema.get("allOf").is_some()),
            "the walk does not model a lone allOf"
        );
        if !composed {
            offered.push((keys.clone(), schema));
        }
        for (key, child) in schema["properties"].as_object().into_iter().flatten() {
            let mut keys = keys.clone();
            keys.push(key.clone());
            self.children(child, keys, depth - 1, offered);
        }
    }

    /// Key completion at a table whose keys in the document are `keys`:
    /// (label, documentation) of each entry. taplo goes `max_keys` (5) keys
    /// deep and drops the entries the document already holds; the path it
    /// looks up never names a place in the document, so it drops none.
    fn complete_keys(&self, document: &Value, keys: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        self.schemas_at(
            self.root,
            &Self::lookup_keys(document, &path(keys)),
            &mut found,
        );
        let mut offered = Vec::new();
        for schema in found {
            self.children(schema, Vec::new(), 5 + 1, &mut offered);
        }
        let mut entries: Vec<(String, String)> = offered
            .into_iter()
            .map(|(keys, schema)| {
                let docs = schema["description"].as_str().unwrap_or_default();
                (keys.join("."), docs.to_string())
            })
            .collect();
        entries.dedup();
        entries
    }

    /// Hover on a key whose path in the document is `keys`.
    fn hover_key(&self, document: &Value, keys: &str) -> String {
        let mut found = Vec::new();
        self.schemas_at(
            self.root,
            &Self::lookup_keys(document, &path(keys)),
            &mut found,
        );
        let docs: Vec<&str> = found
            .iter()
            .map(|s| s["description"].as_str().unwrap_or_default())
            .collect();
        docs.join("\n\n")
    }

    /// Hover on a value, and the `enum` values completed there: taplo
    /// looks a value up by its own path (hover) or through `lookup_keys`
    /// (completion in an inline table); both are checked.
    fn value(&self, document: &Value, keys: &str) -> (String, Vec<Value>) {
        let mut found = Vec::new();
        self.schemas_at(self.root, &path(keys), &mut found);
        let docs: Vec<&str> = found
            .iter()
            .map(|s| s["description"].as_str().unwrap_or_default())
            .collect();
        let mut completed = Vec::new();
        self.schemas_at(
            self.root,
            &Self::lookup_keys(document, &path(keys)),
            &mut completed,
        );
        let values = completed
            .iter()
            .flat_map(|s| s["enum"].as_array().cloned().unwrap_or_default())
            .collect();
        (docs.join("\n"), values)
    }
}

/// Completion and hover inside a step, as taplo computes them (see
/// [`Taplo`]): every action and modifier of the catalog is offered once as
/// a key, documented with its description, and hover on it shows the same;
/// a state check completes and describes the state names.
#[test]
fn taplo_completes_and_describes_steps() {
    use hangup::model::TcpState;
    use hangup::suite::action::{MODIFIERS, catalog};

    let schema: Value = serde_json::from_str(&json_schema()).expect("the schema is JSON");
    let taplo = Taplo { root: &schema };
    let document = to_json(
        "[[case]]\nname = \"a\"\nserver = [{ listen = 8080 }, \"accept\"]\n\
         [[case]]\nname = \"b\"\nclient = [\n  \"close\",\n  { connect = 8080 },\n  \
         { loop = [{ send = 1 }, { sleep = \"1ms\" }], times = 2 },\n  \
         { state = { client = \"TIME_WAIT\" } },\n]\n",
    );
    let keys: Vec<&str> = catalog()
        .map(|d| d.keyword)
        .chain(MODIFIERS.iter().map(|d| d.keyword))
        .collect();
    let summaries: Vec<&str> = catalog()
        .map(|d| d.summary)
        .chain(MODIFIERS.iter().map(|d| d.summary))
        .collect();
    let mut problems = Vec::new();
    for step in [
        "case.1.client.1",
        "case.1.client.2.loop.1",
        "case.0.server.0",
    ] {
        let offered = taplo.complete_keys(&document, step);
        for (key, summary) in keys.iter().zip(&summaries) {
            let docs: Vec<&String> = offered
                .iter()
                .filter(|(label, _)| label == key)
                .map(|(_, docs)| docs)
                .collect();
            // The catalog's words, capitalised.
            let words = &summary[1..];
            match docs.as_slice() {
                [docs] if docs.contains(words) => {}
                _ => problems.push(format!("completion at {step}: `{key}` offered as {docs:?}")),
            }
            let hover = taplo.hover_key(&document, &format!("{step}.{key}"));
            if docs.first().is_none_or(|docs| **docs != hover) {
                problems.push(format!("hover on {step}.{key}: {hover:?}"));
            }
        }
        let nameless = offered.iter().filter(|(label, _)| label.is_empty()).count();
        if nameless > 1 {
            problems.push(format!("{nameless} entries without a name at {step}"));
        }
        let strays: Vec<&String> = offered
            .iter()
            .map(|(label, _)| label)
            .filter(|label| {
                let first = label.split('.').next().unwrap_or_default();
                !label.is_empty() && !keys.contains(&first)
            })
            .collect();
        if !strays.is_empty() {
            problems.push(format!("at {step}, keys not in the catalog: {strays:?}"));
        }
    }

    let sockets = ["client", "server", "proxy_client", "proxy_server"];
    let offered = taplo.complete_keys(&document, "case.1.client.3.state");
    for socket in sockets {
        if !offered
            .iter()
            .any(|(label, docs)| label == socket && docs.contains("TCP state"))
        {
            problems.push(format!(
                "`{socket}` not offered in a state check: {offered:?}"
            ));
        }
    }
    let (hover, values) = taplo.value(&document, "case.1.client.3.state.client");
    let states: Vec<Value> = TcpState::ALL
        .iter()
        .map(|s| Value::from(s.name()))
        .collect();
    if values != states {
        problems.push(format!("state names completed: {values:?}"));
    }
    if !hover.contains("TCP state") {
        problems.push(format!("hover on a state name: {hover:?}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Every bundled suite's JSON report validates against the report's
/// schema (`hangup schema --report`): the reference suites, the suites run
/// against the fixtures, the broken ones (every kind of failure), and a
/// run comparing two versions of a program.
#[test]
fn every_bundled_suite_s_report_validates_against_the_report_schema() {
    let schema: Value = serde_json::from_str(&hangup::report::format::json_schema())
        .expect("the report schema is JSON");
    jsonschema::meta::validate(&schema).expect("a valid draft 2020-12 schema");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut validated = 0;
    for (name, paths) in [
        ("reference", vec![root.join("../suites")]),
        ("fixtures", vec![root.join("../fixtures/suites")]),
        ("broken", vec![root.join("tests/broken")]),
        ("versions", vec![root.join("tests/versions")]),
    ] {
        let json = dir.path().join(format!("{name}.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hangup"))
            .arg("run")
            .args(&paths)
            .arg("--json")
            .arg(&json)
            .arg("--artifacts")
            .arg(dir.path())
            .output()
            .expect("run hangup");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value =
            serde_json::from_slice(&std::fs::read(&json).expect("the report")).expect("JSON");
        let problems = errors(&validator, &report);
        assert!(
            problems.is_empty(),
            "{name}'s report fails the schema: {problems:#?}"
        );
        // And it reads back as the report's own types.
        let bytes = std::fs::read(&json).expect("the report");
        let read = hangup::report::Report::read(&bytes)
            .unwrap_or_else(|e| panic!("{name}'s report does not read back: {e}"));
        validated += read.last_round().len();
    }
    assert!(validated > 50, "only {validated} cases were validated");
}
