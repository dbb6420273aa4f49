//! What is reported of a suite file as a whole: its top-level keys and
//! cases, every problem in file order (one case's errors never hide
//! another's), bytes that are not UTF-8, the rendered report, the limits
//! on its size, cases and problems shown, and the reference suites.

use super::*;

#[rstest]
#[case::missing_name("[[case]]\nclient = [\"close\"]\n".into(), 1, 1, "expected a `name` for this case, found none")]
#[case::name_not_a_string("[[case]]\nname = 5\nclient = [\"close\"]\n".into(), 2, 8, "expected a string, found integer `5`")]
#[case::duplicate_name("[[case]]\nname = \"a\"\nclient = [\"close\"]\n\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 6, 8, "expected a case name unique in this suite, found `a` again (first at line 2, column 8): test names must be unique")]
#[case::bad_name("[[case]]\nname = \"a b\"\nclient = [\"close\"]\n".into(), 2, 8, "expected a case name of letters, digits, `_` and `-`, found `a b`")]
#[case::no_script("[[case]]\nname = \"a\"\n".into(), 1, 1, "expected a `client`, `server` or `proxy` script in this case, found none")]
#[case::script_not_an_array("[[case]]\nname = \"a\"\nclient = \"close\"\n".into(), 3, 10, "expected `client` to be an array of steps, found string")]
#[case::unknown_case_key("[[case]]\nname = \"a\"\nclient = [\"close\"]\nsevrer = []\n".into(), 4, 1, "unknown key `sevrer` in a case: did you mean `server`?")]
#[case::unknown_case_key_near_none("[[case]]\nname = \"a\"\nclient = [\"close\"]\nfrobnicate = []\n".into(), 4, 1, "unknown key `frobnicate` in a case, expected one of `name`, `description`,")]
#[case::unknown_top_key("descripton = \"x\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "unknown key `descripton` at the top of a suite: did you mean `description`?")]
#[case::sysctl_outside_net("[[case]]\nname = \"a\"\nsysctl = { \"kernel.pid_max\" = 5 }\nclient = [\"close\"]\n".into(), 3, 12, "`kernel.pid_max` may not be set: it is host-wide (the sysctls a suite may set are net.ipv4.tcp_fin_timeout, ")]
#[case::sysctl_unlisted("[[case]]\nname = \"a\"\nsysctl = { \"net.netfilter.nf_hooks_lwtunnel\" = 1 }\nclient = [\"close\"]\n".into(), 3, 12, "`net.netfilter.nf_hooks_lwtunnel` may not be set: it is not one hangup knows to be per network namespace")]
#[case::sysctl_value_not_plain("[[case]]\nname = \"a\"\nsysctl = { \"net.ipv4.tcp_fin_timeout\" = \"5 6\" }\nclient = [\"close\"]\n".into(), 3, 41, "expected a sysctl value that is a plain number or word, found `5 6`")]
#[case::sysctls_not_a_table("[[case]]\nname = \"a\"\nsysctl = 5\nclient = [\"close\"]\n".into(), 3, 10, "expected a table of sysctls like")]
#[case::bad_top_deadline("deadline = \"soon\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 12, "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"soon\"")]
#[case::bad_tolerance_floor("[[case]]\nname = \"a\"\ntolerance = { floor = \"x\" }\nclient = [\"close\"]\n".into(), 3, 23, "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"x\"")]
#[case::toml_syntax("[[case]]\nname = \"a\nclient = [\"close\"]\n".into(), 2, 10, "invalid basic string, expected `\"`")]
#[case::empty_file(
    String::new(),
    1,
    1,
    "expected at least one `[[case]]` or `[[sweep]]` table, found none"
)]
#[case::case_not_an_array("case = 5\n".into(), 1, 8, "expected `case` to be an array of tables (`[[case]]`), found integer")]
#[case::case_a_single_table("[case]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "expected `case` to be an array of tables (`[[case]]`), found table")]
#[case::no_cases("case = []\n".into(), 1, 8, "expected at least one `[[case]]` table, found none")]
#[case::empty_client("[[case]]\nname = \"a\"\nclient = []\n".into(), 3, 10, "expected at least one step in `client`, found none")]
#[case::empty_server_beside_a_client("[[case]]\nname = \"a\"\nclient = [\"close\"]\nserver = []\n".into(), 4, 10, "expected at least one step in `server`, found none")]
#[case::case_not_tables("case = [1]\n".into(), 1, 9, "expected a case table, found integer")]
fn one_problem_in_a_case_or_the_file(
    #[case] text: String,
    #[case] line: usize,
    #[case] column: usize,
    #[case] message: &str,
) {
    assert_one_problem(&text, line, column, message);
}

#[rstest]
#[case(
    "invalid type: integer `5`, expected a string",
    "expected a string, found integer `5`"
)]
#[case(
    "invalid value: string \"a, expected b\", expected u16",
    "expected u16, found string \"a, expected b\""
)]
#[case("unknown field `x`, expected `y`", "unknown field `x`, expected `y`")]
fn serde_wording_is_turned_around(#[case] serde: &str, #[case] ours: &str) {
    assert_eq!(expected_first(serde), ours);
}

#[test]
fn not_utf8_points_at_the_bad_byte() {
    let text = b"# caf\xe9\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n";
    let (line, column, message) = problem_in(text);
    assert_eq!((line, column), (1, 6));
    assert_eq!(
        message,
        "expected UTF-8 text, found the byte 0xe9 that is not valid UTF-8"
    );
}

#[test]
fn not_utf8_reports_every_bad_sequence_and_the_rest_of_the_file() {
    // A lone byte, a truncated 3-byte sequence, and an ordinary error after them.
    let text = b"# \xff caf\xe2\x82\n[[case]]\nname = \"a\"\nclient = [{ sleep = \"fast\" }]\n";
    let all = problems(text);
    let found: Vec<_> = all.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(
        found,
        [
            (
                1,
                3,
                "expected UTF-8 text, found the byte 0xff that is not valid UTF-8"
            ),
            (
                1,
                8,
                "expected UTF-8 text, found the bytes 0xe2 0x82 that are not valid UTF-8"
            ),
            (
                4,
                21,
                "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"fast\""
            ),
        ]
    );
    let rendered = rendered(text);
    assert!(rendered.contains("suites/t.toml:1:3"), "{rendered}");
    assert!(
        rendered.contains("1 | # \u{fffd} caf\u{fffd}"),
        "{rendered}"
    );
}

#[test]
fn every_error_in_the_file_is_reported_in_file_order() {
    let text = r#"deadline = "soon"

[[case]]
name = "one"
client = [
  { conect = 8080 },
  "closee",
  { sleep = "fast" },
]
server = [
  { listen = "10.0.0.1:80" },
  { recv = true, within = "1s" },
]

[[case]]
sysctl = { "kernel.pid_max" = 5 }
client = [
  { connect = 8080, expect = "ECONRESET" },
  { state = { client = "ESTABLISHD" } },
  { send = true },
  { listen = 8080 },
]

[[case]]
name = "one"
server = [{ connect = 8080, close = true }]
"#;
    let all = problems(text.as_bytes());
    let found: Vec<_> = all
        .iter()
        .map(|(l, c, m)| (*l, *c, m.split([',', '(']).next().unwrap().trim_end()))
        .collect();
    assert_eq!(
        found,
        [
            (1, 12, "expected a duration like \"200ms\""),
            (6, 5, "unknown field `conect`: did you mean `connect`?"),
            (7, 3, "expected \"accept\""),
            (8, 13, "expected a duration like \"200ms\""),
            (11, 14, "expected a loopback address"),
            (12, 27, "`within` does not apply to `recv`"),
            (15, 1, "expected a `name` for this case"),
            (16, 12, "`kernel.pid_max` may not be set: it is host-wide"),
            (18, 30, "expected \"ok\""),
            (
                19,
                24,
                "unknown TCP state `ESTABLISHD`: did you mean ESTABLISHED?"
            ),
            (20, 12, "expected text to send"),
            (21, 14, "`listen` is for the server or proxy side"),
            (25, 8, "expected a case name unique in this suite"),
            (26, 29, "expected one action per step"),
        ],
        "{all:#?}"
    );
}

#[test]
fn a_case_with_errors_does_not_stop_later_cases_being_checked() {
    let text = "\
[[case]]
name = \"first\"
client = [{ conect = 1 }]

[[case]]
name = \"second\"
client = [{ sleep = \"fast\" }]
";
    let all = problems(text.as_bytes());
    let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(3, 13), (7, 21)], "{all:#?}");
}

#[test]
fn a_duplicate_name_is_found_even_when_both_cases_have_other_errors() {
    let text = "\
[[case]]
name = \"a\"
client = [{ conect = 1 }]

[[case]]
name = \"a\"
client = [{ sleep = \"fast\" }]
";
    let all = problems(text.as_bytes());
    let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(3, 13), (6, 8), (7, 21)], "{all:#?}");
    assert!(all[1].2.contains("found `a` again"), "{all:#?}");
}

#[test]
fn rendered_has_path_line_col_and_the_source_line() {
    let text = client("  { sleep = \"fast\" },");
    let rendered = rendered(text.as_bytes());
    assert!(rendered.contains("suites/t.toml:4:13"), "{rendered}");
    assert!(
        rendered.contains("4 |   { sleep = \"fast\" },"),
        "{rendered}"
    );
    assert!(
        rendered.contains("error: expected a duration like"),
        "{rendered}"
    );
}

#[test]
fn every_reference_suite_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    let files = crate::suite::discover(&[dir]).unwrap();
    assert!(!files.is_empty());
    for file in files {
        let suite = crate::suite::load_named(&file).unwrap_or_else(|err| panic!("{err}"));
        assert!(
            !suite.cases.is_empty(),
            "{} has no cases",
            file.path.display()
        );
    }
}

#[test]
fn never_panics_on_truncated_or_corrupted_input() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    let text = std::fs::read(dir.join("s07_abortive_close.toml")).unwrap();
    for end in 0..text.len() {
        let _ = parse_suite(Path::new(PATH), &text[..end]);
    }
    // Every other byte replaced in turn by bytes that break strings,
    // arrays and UTF-8 (the lead byte of a 2-byte sequence).
    for at in (0..text.len()).step_by(2) {
        for byte in [b'"', b']', 0xc3] {
            let mut broken = text.clone();
            broken[at] = byte;
            let _ = parse_suite(Path::new(PATH), &broken);
        }
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_parsed() {
    let big = vec![b'#'; crate::suite::limits::MAX_FILE_BYTES + 1];
    let (line, column, message) = problem_in(&big);
    assert_eq!((line, column), (1, 1));
    assert!(message.contains("at most 4 MiB"), "{message}");
}

/// `n` cases named `c0`, `c1`, ...: three lines each.
fn cases(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[case]]\nname = \"c{i}\"\nclient = [\"close\"]\n"))
        .collect()
}

#[test]
fn a_file_holds_as_many_cases_as_the_limit_and_not_one_more() {
    let limit = crate::suite::limits::MAX_CASES_PER_FILE;
    let suite = parse_suite(Path::new(PATH), cases(limit).as_bytes()).expect("at the limit");
    assert_eq!(suite.cases.len(), limit);
    let (line, column, message) = problem(&cases(limit + 1));
    // At the first case past the limit: its `[[case]]` header.
    assert_eq!((line, column), (3 * limit + 1, 1), "{message}");
    assert_eq!(
        message,
        "expected at most 10000 cases in a suite file, found 10001: split it into several files"
    );
}

/// `compare` makes a case of each run of each version (here one of
/// each): the limit counts what is made.
#[test]
fn a_file_makes_as_many_cases_as_the_limit_and_not_one_more() {
    let limit = crate::suite::limits::MAX_GENERATED_CASES;
    let program = "[program]\nrun = [\"./s\"]\nport = 8080\ncompare = [{ name = \"a\" }, { name = \"b\" }]\nbaseline_runs = 1\n\n";
    let written = |n: usize| {
        format!(
            "{program}{}",
            cases(n).replace("[\"close\"]", "[{ connect = 8080 }]")
        )
    };
    let suite = parse_suite(Path::new(PATH), written(limit / 2).as_bytes()).expect("at the limit");
    assert_eq!(suite.cases.len(), limit);
    let (line, column, message) = problem(&written(limit / 2 + 1));
    // At the case that passes it: the first past half the limit.
    assert_eq!((line, column), (6 + 3 * (limit / 2) + 1, 1), "{message}");
    assert_eq!(
        message,
        "expected at most 10000 cases made by a suite file (each version of a `compare` is a case, and each cell of a sweep), found 10002 by the end of this one: split it into several files"
    );
}

#[test]
fn too_many_steps_in_a_case_counting_loops_is_one_problem_naming_the_limit() {
    let half = crate::suite::limits::MAX_STEPS_PER_CASE / 2;
    let step = "{ sleep = \"1ms\" }, ";
    // The client's loop and its body, then the server's steps: the limit
    // exactly, with the loop's steps counted.
    let at_limit = |last: &str| {
        format!(
            "[[case]]\nname = \"a\"\nclient = [{{ loop = [{}], times = 1 }}]\nserver = [{}{last}]\n",
            step.repeat(half),
            step.repeat(half - 1)
        )
    };
    parse_suite(Path::new(PATH), at_limit("").as_bytes()).expect("at the limit");
    // One more, at the end of the server's script: refused there.
    let text = at_limit("{ sleep = \"2ms\" }");
    let (line, column, message) = problem(&text);
    let past = text
        .lines()
        .nth(3)
        .and_then(|l| l.find("{ sleep = \"2ms\" }"));
    assert_eq!(
        (line, Some(column)),
        (4, past.map(|at| at + 1)),
        "{message}"
    );
    assert_eq!(
        message,
        "expected at most 10000 steps in a case (the steps inside loops included), found 10001 by the end of `server`"
    );
}

#[test]
fn only_the_first_problems_of_a_file_are_shown_and_the_rest_counted() {
    let shown = crate::suite::limits::MAX_PROBLEMS_SHOWN;
    let text = client(&"  \"closee\",\n".repeat(shown + 7));
    assert_eq!(problems(text.as_bytes()).len(), shown);
    let report = rendered(text.as_bytes());
    assert!(
        report.contains("7 more problem(s) in suites/t.toml not shown"),
        "{}",
        &report[report.len().saturating_sub(300)..]
    );
}

#[test]
fn a_suite_s_sysctls_apply_to_every_case_and_a_case_overrides_them_key_by_key() {
    let text = r#"
sysctl = { "net.ipv4.tcp_rfc1337" = 1, "net.ipv4.tcp_fin_timeout" = 5 }

[[case]]
name = "inherits"
client = ["close"]

[[case]]
name = "overrides"
sysctl = { "net.ipv4.tcp_fin_timeout" = 2 }
client = ["close"]
"#;
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid");
    let sorted = |pairs: &[(String, String)]| {
        let mut pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        pairs
    };
    assert_eq!(
        sorted(&suite.cases[0].sysctls),
        ["net.ipv4.tcp_fin_timeout=5", "net.ipv4.tcp_rfc1337=1"]
    );
    assert_eq!(
        sorted(&suite.cases[1].sysctls),
        ["net.ipv4.tcp_fin_timeout=2", "net.ipv4.tcp_rfc1337=1"]
    );
}
