//! A `[program]` table (the suite's or a case's): what it must hold, the
//! checks and steps that need one, the side it plays, a suite-scoped
//! program shared by cases, and `compare`'s two versions of each case.

use super::*;

/// A suite whose `[program]` table has these lines, and one client case.
fn with_program(table: &str) -> String {
    format!("[program]\n{table}\n\n[[case]]\nname = \"a\"\nclient = [{{ connect = 8080 }}]\n")
}

#[rstest]
#[case::no_command(
    with_program("run = []\nport = 8080"),
    "expected `run` to name a command"
)]
#[case::port_zero(
    with_program("run = [\"./server\"]\nport = 0"),
    "expected a `port` from 1 to 65535, found 0"
)]
#[case::no_port(with_program("run = [\"./server\"]"), "missing field `port`")]
#[case::bad_pattern(
    with_program("run = [\"./server\"]\nport = 8080\nready = \"(\""),
    "expected `ready` to be a regular expression, found `(`"
)]
#[case::bad_signal(
    with_program("run = [\"./server\"]\nport = 8080\nstop = \"SIGSTOPPLEASE\""),
    "expected `stop` to be a signal name like \"SIGTERM\" or \"SIGINT\", found \"SIGSTOPPLEASE\""
)]
#[case::unknown_key(
    with_program("run = [\"./server\"]\nport = 8080\nrestart = true"),
    "unknown key `restart` in `[program]`, expected one of `run`, `role`, `port`,"
)]
#[case::mistyped_key(
    with_program("run = [\"./server\"]\nport = 8080\nredy = \"^up\""),
    "unknown key `redy` in `[program]`: did you mean `ready`?"
)]
#[case::log_count_and_at_most(
    "[program]\nrun = [\"./s\"]\nport = 8080\n\n[[case]]\nname = \"a\"\nclient = [{ log = \"x\", count = 0, at_most = 1 }]\n".to_string(),
    "expected `count` or `at_most` with `log`, found both"
)]
#[case::log_bad_pattern(
    "[program]\nrun = [\"./s\"]\nport = 8080\n\n[[case]]\nname = \"a\"\nclient = [{ log = \"(\" }]\n".to_string(),
    "expected a regular expression, found `(`"
)]
#[case::log_pattern_too_large_to_compile_quickly(
    "[program]\nrun = [\"./s\"]\nport = 8080\n\n[[case]]\nname = \"a\"\nclient = [{ log = \"\\\\w{90}\\\\w{90}\" }]\n".to_string(),
    "expected a regular expression, found `\\w{90}\\w{90}`: Compiled regex exceeds size limit of 1048576 bytes"
)]
#[case::ready_pattern_too_large(
    with_program("run = [\"./server\"]\nport = 8080\nready = \"\\\\w{90}\\\\w{90}\""),
    "expected `ready` to be a regular expression, found `\\w{90}\\w{90}`: Compiled regex exceeds size limit"
)]
#[case::signal_without_a_program(
    "[[case]]\nname = \"a\"\nclient = [{ signal = \"SIGTERM\" }]\n".to_string(),
    "expected a program under test for `signal` to go to, found none"
)]
#[case::signal_not_a_signal(
    "[program]\nrun = [\"./s\"]\nport = 8080\n\n[[case]]\nname = \"a\"\nclient = [{ signal = \"SIGNOPE\" }]\n".to_string(),
    "expected a signal name like \"SIGTERM\" or \"SIGINT\", found \"SIGNOPE\""
)]
#[case::released_without_a_program(
    "[[case]]\nname = \"a\"\nclient = [{ released = true }]\n".to_string(),
    "expected a program under test for `released` to look into, found none"
)]
#[case::log_without_a_program(
    "[[case]]\nname = \"a\"\nclient = [{ log = \"x\" }]\n".to_string(),
    "expected a program under test for `log` to read, found none"
)]
#[case::server_script_beside_a_program(
    "[program]\nrun = [\"./server\"]\nport = 8080\n\n[[case]]\nname = \"a\"\nserver = [{ listen = 8080 }]\n".to_string(),
    "expected no `server` script in a case with a program (the program at line 1 plays the server), found one"
)]
#[case::client_script_beside_a_client_program(
    "[program]\nrun = [\"./pool\"]\nport = 8080\nrole = \"client\"\n\n[[case]]\nname = \"a\"\nclient = [{ sleep = \"1ms\" }]\nserver = [{ listen = 8080 }]\n".to_string(),
    "expected no `client` script in a case with a program (the program at line 1 plays the client), found one"
)]
#[case::unknown_role(
    with_program("run = [\"./server\"]\nport = 8080\nrole = \"proxy\""),
    "expected `role` to be \"server\" or \"client\", found \"proxy\""
)]
#[case::unknown_scope(
    with_program("run = [\"./server\"]\nport = 8080\nscope = \"run\""),
    "expected `scope` to be \"case\" or \"suite\", found \"run\""
)]
#[case::suite_scope_for_a_client(
    "[program]\nrun = [\"./pool\"]\nport = 8080\nrole = \"client\"\nscope = \"suite\"\n\n[[case]]\nname = \"a\"\nserver = [{ listen = 8080 }]\n".to_string(),
    "expected `scope = \"suite\"` only for a program that plays the server, found `role = \"client\"`"
)]
#[case::suite_scope_in_a_case(
    "[[case]]\nname = \"a\"\nprogram = { run = [\"./s\"], port = 8080, scope = \"suite\" }\nclient = [{ connect = 8080 }]\n".to_string(),
    "expected `scope = \"suite\"` only in the suite's `[program]`, found it in a case's"
)]
#[case::sysctl_beside_a_suite_program(
    "[program]\nrun = [\"./s\"]\nport = 8080\nscope = \"suite\"\n\n[[case]]\nname = \"a\"\nsysctl = { \"net.ipv4.tcp_fin_timeout\" = 5 }\nclient = [{ connect = 8080 }]\n".to_string(),
    "expected no `sysctl` of its own in a case that shares the suite's program (`scope = \"suite\"` at line 1), found one"
)]
#[case::signal_to_a_suite_program(
    "[program]\nrun = [\"./s\"]\nport = 8080\nscope = \"suite\"\n\n[[case]]\nname = \"a\"\nclient = [{ signal = \"SIGTERM\" }]\n".to_string(),
    "expected no `signal` in a case that shares the suite's program (`scope = \"suite\"`), found one"
)]
#[case::one_version(
    with_program("run = [\"./s\"]\nport = 8080\ncompare = [{ name = \"a\" }]"),
    "expected `compare` to name two versions (the one compared against first), found 1"
)]
#[case::version_name(
    with_program("run = [\"./s\"]\nport = 8080\ncompare = [{ name = \"a b\" }, { name = \"c\" }]"),
    "expected a version name of letters, digits, `.`, `_` and `-`, found `a b`"
)]
#[case::baseline_runs_without_compare(
    with_program("run = [\"./s\"]\nport = 8080\nbaseline_runs = 2"),
    "expected `baseline_runs` only beside `compare`"
)]
#[case::versions_of_a_suite_program(
    with_program(
        "run = [\"./s\"]\nport = 8080\nscope = \"suite\"\ncompare = [{ name = \"a\" }, { name = \"b\" }]"
    ),
    "expected `compare` only for a program started per case"
)]
#[case::accept_queue_of_no_listener(
    "[[case]]\nname = \"a\"\nclient = [{ accept_queue = { server = 1 } }]\n".to_string(),
    "expected the accept queue of a side that listens, found `server`, and this case has no `server` script or program playing it"
)]
#[case::accept_queue_of_a_client(
    "[[case]]\nname = \"a\"\nclient = [{ accept_queue = { client = 1 } }]\n".to_string(),
    "unknown field `client`, expected `server` or `proxy`"
)]
fn a_program_table_is_checked(#[case] text: String, #[case] message: &str) {
    let (_, _, found) = problem(&text);
    assert!(found.starts_with(message), "{found}");
}

/// What `execve` and `chdir` would not take as written is refused where
/// it is written: the value, or the variable's name.
#[rstest]
#[case::no_command(
    "run = []",
    (2, 7),
    "expected `run` to name a command and its arguments"
)]
#[case::empty_command(
    "run = [\"\", \"--port\"]",
    (2, 8),
    "expected `run` to start with a command, found an empty string"
)]
#[case::nul_in_the_command(
    "run = [\"./s\\u0000\"]",
    (2, 8),
    "expected `run`'s words without NUL bytes"
)]
#[case::nul_in_an_argument(
    "run = [\"./s\", \"--name\", \"a\\u0000b\"]",
    (2, 25),
    "expected `run`'s words without NUL bytes"
)]
#[case::equals_in_a_name(
    "run = [\"./s\"]\nenv = { OK = \"1\", \"A=B\" = \"1\" }",
    (3, 19),
    "expected an environment variable's name without `=`"
)]
#[case::empty_name(
    "run = [\"./s\"]\nenv = { \"\" = \"1\" }",
    (3, 9),
    "expected an environment variable's name, found an empty one"
)]
#[case::nul_in_a_name(
    "run = [\"./s\"]\nenv = { \"A\\u0000\" = \"1\" }",
    (3, 9),
    "expected an environment variable's name without NUL bytes"
)]
#[case::nul_in_a_value(
    "run = [\"./s\"]\nenv = { A = \"1\\u0000\" }",
    (3, 13),
    "expected an environment variable's value without NUL bytes"
)]
#[case::nul_in_cwd(
    "run = [\"./s\"]\ncwd = \"/tmp\\u0000\"",
    (3, 7),
    "expected `cwd` without NUL bytes"
)]
#[case::empty_cwd(
    "run = [\"./s\"]\ncwd = \"\"",
    (3, 7),
    "expected `cwd` to name a folder, found an empty string"
)]
#[case::nul_in_requires(
    "run = [\"./s\"]\nrequires = [\"node\\u0000\"]",
    (3, 13),
    "expected `requires`'s commands without NUL bytes"
)]
#[case::a_version_s_empty_command(
    "run = [\"./s\"]\ncompare = [{ name = \"a\", run = [] }, { name = \"b\" }]",
    (3, 32),
    "expected version `a`'s `run` to name a command"
)]
#[case::no_baseline_run(
    "run = [\"./s\"]\ncompare = [{ name = \"a\" }, { name = \"b\" }]\nbaseline_runs = 0",
    (4, 17),
    "expected `baseline_runs` from 1 to 10, found 0"
)]
#[case::too_many_baseline_runs(
    "run = [\"./s\"]\ncompare = [{ name = \"a\" }, { name = \"b\" }]\nbaseline_runs = 11",
    (4, 17),
    "expected `baseline_runs` from 1 to 10, found 11"
)]
#[case::a_mask_that_does_not_compile(
    "run = [\"./s\"]\nmask = [\"pid [0-9]+\", \"took (\"]",
    (3, 23),
    "expected a mask to be a regular expression, found `took (`: regex parse error"
)]
#[case::an_empty_mask(
    "run = [\"./s\"]\nmask = [\"\"]",
    (3, 9),
    "expected a mask to be a regular expression that matches something, found an empty string"
)]
#[case::a_mask_too_large_to_compile(
    "run = [\"./s\"]\nmask = [\"\\\\w{90}\\\\w{90}\\\\w{90}\"]",
    (3, 9),
    "expected a mask to be a regular expression, found `\\w{90}\\w{90}\\w{90}`: Compiled regex exceeds size limit"
)]
#[case::a_version_s_name_with_equals(
    "run = [\"./s\"]\ncompare = [{ name = \"a\" }, { name = \"b\", env = { \"X=\" = \"1\" } }]",
    (3, 50),
    "expected an environment variable's name without `=`"
)]
fn what_execve_cannot_take_is_refused_where_it_is_written(
    #[case] table: &str,
    #[case] (line, column): (usize, usize),
    #[case] message: &str,
) {
    assert_one_problem(
        &with_program(&format!("{table}\nport = 8080")),
        line,
        column,
        message,
    );
}

/// What a shell would quote but `execve` takes as it is: empty and `=`
/// arguments, `=` and empty values.
/// A mistyped key in a `[program]` is one mistake: the steps that need a
/// program are not also told there is none, nor a sweep.
#[test]
fn a_refused_program_table_is_one_error_not_more() {
    let text = "[program]\nrun = [\"./s\"]\nport = 8080\nredy = \"^up\"\n\n\
                [[case]]\nname = \"a\"\nclient = [{ connect = 8080 }, { released = true }, { log = \"x\" }]\n\n\
                [[sweep]]\nname = \"s\"\nrequest = \"GET / HTTP/1.1\\r\\n\\r\\n\"\nphases = [\"connected\"]\nkinds = [\"close\"]\n";
    let all = problems(text.as_bytes());
    let messages: Vec<&str> = all.iter().map(|(_, _, m)| m.as_str()).collect();
    assert_eq!(
        messages,
        ["unknown key `redy` in `[program]`: did you mean `ready`?"],
        "{all:#?}"
    );
    // A tolerance's too.
    let text = "tolerance = { flor = \"5ms\" }\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n";
    let all = problems(text.as_bytes());
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        all[0].2,
        "unknown key `flor` in `tolerance`: did you mean `floor`?"
    );
}

#[test]
fn arguments_and_values_that_only_look_odd_are_accepted() {
    let text = with_program(
        "run = [\"./s\", \"\", \"a=b\", \"--x=\"]\nport = 8080\nenv = { A_1 = \"x=y\", B = \"\" }",
    );
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid");
    let program = suite.cases[0].program.as_ref().expect("a program");
    assert_eq!(program.argv, ["./s", "", "a=b", "--x="]);
    assert_eq!(
        program.env,
        [
            ("A_1".to_string(), "x=y".to_string()),
            ("B".to_string(), String::new())
        ]
    );
}

#[test]
fn two_versions_make_each_case_a_pair() {
    let text = r#"
[program]
run = ["./server", "--port", "{port}"]
port = 8080
env = { MODE = "test", LEVEL = "1" }
compare = [
  { name = "1.0", env = { LEVEL = "2" } },
  { name = "1.1", run = ["./server-1.1", "--port", "{port}"] },
]

[[case]]
name = "leaves"
client = [{ connect = 8080 }]
"#;
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    let names: Vec<&str> = suite.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["leaves@1.0", "leaves@1.0#2", "leaves@1.1"]);
    let program = |i: usize| suite.cases[i].program.as_ref().expect("a program");
    assert_eq!(program(0).argv, ["./server", "--port", "{port}"]);
    assert_eq!(
        program(0).env,
        [
            ("MODE".to_string(), "test".to_string()),
            ("LEVEL".to_string(), "2".to_string())
        ]
    );
    assert_eq!(program(1).argv, ["./server", "--port", "{port}"]);
    assert_eq!(program(2).argv, ["./server-1.1", "--port", "{port}"]);
    let version = suite.cases[0].version.as_ref().expect("a version");
    assert_eq!(
        (
            version.case.as_str(),
            version.of.name.as_str(),
            version.of.base
        ),
        ("leaves", "1.0", true)
    );
    assert!(suite.cases[1].version.as_ref().expect("a version").of.base);
    assert!(!suite.cases[2].version.as_ref().expect("a version").of.base);
}

/// The version compared against runs twice unless `baseline_runs` says
/// (its runs' own differences are noise); a version compared with itself
/// runs on under its name, numbered.
#[rstest]
#[case::twice_by_default("", "\"a\"", "\"b\"", &["leaves@a", "leaves@a#2", "leaves@b"])]
#[case::once("baseline_runs = 1\n", "\"a\"", "\"b\"", &["leaves@a", "leaves@b"])]
#[case::three_times("baseline_runs = 3\n", "\"a\"", "\"b\"", &["leaves@a", "leaves@a#2", "leaves@a#3", "leaves@b"])]
#[case::against_itself("", "\"0.27.1\"", "\"0.27.1\"", &["leaves@0.27.1", "leaves@0.27.1#2", "leaves@0.27.1#3"])]
fn the_version_compared_against_runs_more_than_once(
    #[case] runs: &str,
    #[case] base: &str,
    #[case] new: &str,
    #[case] names: &[&str],
) {
    let text = format!(
        "[program]\nrun = [\"./s\"]\nport = 8080\n{runs}compare = [{{ name = {base} }}, {{ name = {new} }}]\n\n[[case]]\nname = \"leaves\"\nclient = [{{ connect = 8080 }}]\n"
    );
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    let made: Vec<&str> = suite.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(made, names);
    let versions: Vec<(bool, usize)> = suite
        .cases
        .iter()
        .map(|c| {
            c.version
                .as_ref()
                .map(|v| (v.of.base, v.of.run))
                .expect("a version")
        })
        .collect();
    let last = versions.len() - 1;
    assert!(
        versions[..last].iter().all(|(base, _)| *base),
        "{versions:?}"
    );
    assert!(!versions[last].0, "{versions:?}");
}

/// Masks are kept as written, for the report and the diff.
#[test]
fn masks_are_kept_as_written() {
    let text =
        with_program("run = [\"./s\"]\nport = 8080\nmask = [\"pid [0-9]+\", \"^WARN .*slow$\"]");
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    let program = suite.cases[0].program.as_ref().expect("a program");
    assert_eq!(program.masks, ["pid [0-9]+", "^WARN .*slow$"]);
}

#[test]
fn a_suite_scoped_program_is_shared_by_the_cases_without_their_own() {
    let text = r#"
sysctl = { "net.ipv4.tcp_rfc1337" = 1 }

[program]
run = ["./server"]
port = 8080
scope = "suite"

[[case]]
name = "shares"
client = [{ connect = 8080 }, { released = true }]

[[case]]
name = "own"
program = { run = ["./other"], port = 9000 }
sysctl = { "net.ipv4.tcp_fin_timeout" = 5 }
client = [{ connect = 9000 }, { signal = "SIGTERM" }]
"#;
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    assert!(suite.cases[0].shares_program());
    assert_eq!(
        suite.cases[0].sysctls,
        [("net.ipv4.tcp_rfc1337".to_string(), "1".to_string())]
    );
    assert!(!suite.cases[1].shares_program());
    assert_eq!(
        suite.cases[1].program.as_ref().map(|p| p.scope),
        Some(crate::suite::Scope::Case)
    );
}

#[test]
fn a_program_plays_the_server_for_state_checks_and_a_case_may_name_its_own() {
    let text = r#"
[program]
run = ["{fixture:stream}", "--port", "{port}"]
port = 8080
ready = "^listening"
stop = "SIGINT"
grace = "1s"
env = { MODE = "test" }

[[case]]
name = "suite_s"
client = [{ connect = 8080 }, { state = { server = "ESTABLISHED" }, within = "1s" }]

[[case]]
name = "own"
program = { run = ["./other"], port = 9000 }
client = [{ connect = 9000 }]
"#;
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    let first = suite.cases[0]
        .program
        .as_ref()
        .expect("the suite's program");
    assert_eq!(first.port, 8080);
    assert_eq!(first.stop, nix::sys::signal::Signal::SIGINT);
    assert_eq!(first.grace, Duration::from_secs(1));
    assert_eq!(first.env, [("MODE".to_string(), "test".to_string())]);
    assert!(
        first
            .ready
            .as_ref()
            .is_some_and(|r| r.is_match("listening on 8080"))
    );
    let own = suite.cases[1].program.as_ref().expect("its own program");
    assert_eq!(own.argv, ["./other"]);
    assert_eq!(own.within, crate::suite::DEFAULT_READY_WITHIN);
}

#[test]
fn a_program_that_plays_the_client_makes_the_client_s_sockets_checkable() {
    let text = r#"
[program]
run = ["./pool"]
port = 8080
role = "client"

[[case]]
name = "a"
server = [{ listen = 8080 }, "accept", { state = { client = "ESTABLISHED" }, within = "1s" }]
"#;
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid suite");
    let program = suite.cases[0].program.as_ref().expect("program");
    assert_eq!(program.role, Side::Client);
    // As the server, it would clash with the server script, and `client`
    // would be a side nobody plays.
    let found = problems(
        text.replace("role = \"client\"", "role = \"server\"")
            .as_bytes(),
    );
    assert!(
        found
            .iter()
            .any(|(_, _, m)| m.contains("this case has no `client` script")),
        "{found:#?}"
    );
}
