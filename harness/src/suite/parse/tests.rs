use std::path::Path;
use std::time::Duration;

use rstest::rstest;

use super::*;
use crate::model::{Outcome, Side};
use crate::suite::action::catalog;
use crate::suite::{Action, Check, Control, SocketCall};

const PATH: &str = "suites/t.toml";

/// Each problem as `(line, column, message)`, in the order reported.
fn problems(bytes: &[u8]) -> Vec<(usize, usize, String)> {
    match parse_suite(Path::new(PATH), bytes) {
        Ok(_) => panic!("expected the suite to be invalid, it parsed"),
        Err(SuiteError::Invalid { diagnostics, .. }) => diagnostics
            .into_iter()
            .map(|d| (d.location.line, d.location.column, d.message))
            .collect(),
        Err(other) => panic!("expected SuiteError::Invalid, found {other:?}"),
    }
}

/// The one problem of a suite that has exactly one.
fn problem(text: &str) -> (usize, usize, String) {
    problem_in(text.as_bytes())
}

fn problem_in(bytes: &[u8]) -> (usize, usize, String) {
    let mut all = problems(bytes);
    assert_eq!(all.len(), 1, "expected one problem, found {all:#?}");
    all.remove(0)
}

fn rendered(text: &[u8]) -> String {
    match parse_suite(Path::new(PATH), text) {
        Err(SuiteError::Invalid { rendered, .. }) => rendered,
        other => panic!("expected SuiteError::Invalid, found {other:?}"),
    }
}

/// A case named `a` with this client script.
fn client(steps: &str) -> String {
    format!("[[case]]\nname = \"a\"\nclient = [\n{steps}\n]\n")
}

#[rstest]
#[case::unknown_action(
    client("  { conect = 8080 },"),
    4,
    5,
    "unknown field `conect`, expected one of `listen`, `accept`, `connect`,"
)]
#[case::unknown_bare_action(
    client("  \"closee\","),
    4,
    3,
    "expected \"accept\", \"recv\", \"close\", \"abort\" or \"so_error\" as a bare step, found \"closee\""
)]
#[case::bare_action_needing_an_argument(
    client("  \"connect\","),
    4,
    3,
    "expected \"accept\", \"recv\", \"close\", \"abort\" or \"so_error\" as a bare step, found \"connect\" (it takes an argument: write it as a table)"
)]
#[case::unknown_errno(
    client("  { connect = 8080, expect = \"ECONRESET\" },"),
    4,
    30,
    "expected \"ok\", \"EOF\" or an errno name, found \"ECONRESET\" (unknown errno `ECONRESET`, expected one of EPIPE, ECONNRESET,"
)]
#[case::unknown_errno_in_a_list(
    client("  { connect = 8080, expect = [\"EPIPE\", \"EFOO\"] },"),
    4,
    40,
    "expected \"ok\", \"EOF\" or an errno name, found \"EFOO\" (unknown errno `EFOO`, expected one of EPIPE,"
)]
#[case::empty_expect_list(
    client("  { connect = 8080, expect = [] },"),
    4,
    30,
    "expected at least one outcome, found an empty list"
)]
#[case::number_in_expect_list(
    client("  { connect = 8080, expect = [\"EPIPE\", 5] },"),
    4,
    40,
    "expected a string, found integer `5`"
)]
#[case::unknown_state(
    client("  { state = { client = \"ESTABLISHD\" } },"),
    4,
    24,
    "unknown TCP state `ESTABLISHD`, expected one of ESTABLISHED, SYN_SENT,"
)]
#[case::unknown_state_side(
    client("  { state = { client = \"CLOSE\", serve = \"CLOSE\" } },"),
    4,
    33,
    "unknown field `serve`, expected one of `client`, `server`, `proxy_client`, `proxy_server`"
)]
#[case::state_of_a_side_with_no_script(
    client("  { state = { server = \"CLOSE_WAIT\" } },"),
    4,
    3,
    "expected a state check of a socket some side holds, found `server`, which is the server's, and this case has no `server` script"
)]
#[case::wait_for_a_label_nobody_marks(
    client("  { wait = \"ready\", timeout = \"1s\" },"),
    4,
    3,
    "expected a `wait` for a label another side marks, found `wait = \"ready\"` and no `mark = \"ready\"` in another script"
)]
#[case::loop_without_times(
    client("  { loop = [{ send = 1 }] },"),
    4,
    12,
    "expected `times` with `loop`: every loop is bounded, found none"
)]
#[case::loop_in_a_loop(
    client("  { loop = [{ loop = [{ send = 1 }], times = 2 }], times = 2 },"),
    4,
    22,
    "expected a step, found a `loop` inside a `loop`: loops do not nest"
)]
#[case::loop_of_nothing(
    client("  { loop = [], times = 2 },"),
    4,
    12,
    "expected at least one step in `loop`, found none"
)]
#[case::bad_step_in_a_loop(
    client("  { loop = [{ sleep = \"fast\" }], times = 2 },"),
    4,
    23,
    "expected a duration like"
)]
#[case::poll_for_hup(
    client("  { poll = [\"in\", \"hup\"] },"),
    4,
    12,
    "expected events to poll for among in, pri, out, rdhup, found `hup`, which poll(2) always reports"
)]
#[case::unknown_poll_event(
    client("  { poll = \"readable\" },"),
    4,
    12,
    "expected a poll event among in, pri, out, rdhup, err, hup, nval, found \"readable\""
)]
#[case::revents_on_recv(
    client("  { recv = true, revents = [\"in\"] },"),
    4,
    28,
    "`revents` does not apply to `recv`"
)]
#[case::again_on_send(
    client("  { send = 1, again = true },"),
    4,
    23,
    "`again` does not apply to `send`"
)]
#[case::bad_duration(
    client("  { sleep = \"fast\" },"),
    4,
    13,
    "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"fast\""
)]
#[case::bad_timeout(
    client("  { connect = 8080, timeout = \"1 fortnight\" },"),
    4,
    31,
    "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"1 fortnight\""
)]
#[case::send_a_bool(
    client("  { send = true },"),
    4,
    12,
    "expected text to send, or a number of filler bytes, found boolean `true`"
)]
#[case::listen_a_bool("[[case]]\nname = \"a\"\nserver = [{ listen = true }]\n".into(), 3, 22, "expected a port number or a loopback address like \"127.0.0.1:8080\" or \"[::1]:8080\", found boolean `true`")]
#[case::listen_not_an_address("[[case]]\nname = \"a\"\nserver = [{ listen = \"x\" }]\n".into(), 3, 22, "expected a port or an address like \"127.0.0.1:8080\", found \"x\"")]
#[case::sleep_a_number(
    client("  { sleep = 200 },"),
    4,
    13,
    "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found integer `200`"
)]
#[case::close_a_string(
    client("  { close = \"yes\" },"),
    4,
    13,
    "expected a boolean, found string \"yes\""
)]
#[case::port_out_of_range(
    client("  { connect = 8080, from = 70000 },"),
    4,
    28,
    "expected u16, found integer `70000`"
)]
#[case::step_a_number(
    client("  5,"),
    4,
    3,
    "expected a step: a table like `{ connect = 8080 }`, or the name of an action without arguments"
)]
#[case::expect_a_number(
    client("  { connect = 8080, expect = 5 },"),
    4,
    30,
    "expected \"ok\", \"EOF\", an errno name like \"EPIPE\", or a list of them, found integer `5`"
)]
#[case::bad_address(
    client("  { connect = \"x\" },"),
    4,
    15,
    "expected a port or an address like \"127.0.0.1:8080\", found \"x\""
)]
#[case::port_zero(
    client("  { connect = 0 },"),
    4,
    15,
    "expected a port from 1 to 65535, found 0"
)]
#[case::port_zero_in_an_address(
    client("  { connect = \"127.0.0.1:0\" },"),
    4,
    15,
    "expected a port from 1 to 65535, found 0 in \"127.0.0.1:0\""
)]
#[case::port_zero_in_a_v6_address(
    client("  { connect = \"[::1]:00\" },"),
    4,
    15,
    "expected a port from 1 to 65535, found 0 in \"[::1]:00\""
)]
#[case::listen_port_zero_in_an_address("[[case]]\nname = \"a\"\nserver = [{ listen = \"127.0.0.1:0\" }]\n".into(), 3, 22, "expected a port from 1 to 65535, found 0 in \"127.0.0.1:0\"")]
#[case::non_loopback(
    client("  { connect = \"10.0.0.1:80\" },"),
    4,
    15,
    "expected a loopback address (127.0.0.0/8 or ::1), found \"10.0.0.1:80\": hangup sends traffic only inside its own namespaces"
)]
#[case::flag_false(
    client("  { close = false },"),
    4,
    13,
    "expected `true` (or drop the step), found `false`"
)]
#[case::two_actions(
    client("  { connect = 8080, close = true },"),
    4,
    21,
    "expected one action per step, found `connect` and `close`"
)]
#[case::two_actions_in_file_order(
    client("  { close = true, connect = 8080 },"),
    4,
    19,
    "expected one action per step, found `close` and `connect`"
)]
#[case::two_actions_with_a_dotted_key(
    client("  { connect = 8080, state.client = \"CLOSE\" },"),
    4,
    21,
    "expected one action per step, found `connect` and `state`"
)]
#[case::no_action(
    client("  { timeout = \"1s\" },"),
    4,
    3,
    "expected one action in this step, found none; actions are listen, accept,"
)]
#[case::within_on_recv(
    client("  { recv = true, within = \"1s\" },"),
    4,
    27,
    "`within` does not apply to `recv`, expected one of `timeout`, `max`, `matches`, `expect`, `bytes`, `after`, `longer_than`"
)]
#[case::timeout_on_close(
    client("  { close = true, timeout = \"1s\" },"),
    4,
    29,
    "`timeout` does not apply to `close`, expected one of `expect`, `bytes`, `after`, `longer_than`"
)]
#[case::timeout_on_sleep(
    client("  { sleep = \"1s\", timeout = \"1s\" },"),
    4,
    29,
    "`timeout` does not apply to `sleep`, which takes no other key"
)]
#[case::timeout_on_state(
    client("  { state = { client = \"CLOSE\" }, timeout = \"1s\" },"),
    4,
    45,
    "`timeout` does not apply to `state`, expected one of `within`"
)]
#[case::expect_on_sleep(
    client("  { sleep = \"1s\", expect = \"EPIPE\" },"),
    4,
    28,
    "`expect` does not apply to `sleep`: it has no result to judge"
)]
#[case::bare_accept_in_client(
    client("  \"accept\","),
    4,
    3,
    "`accept` is for the server or proxy side, found it in the client script"
)]
#[case::listen_in_client(
    client("  { listen = 8080 },"),
    4,
    14,
    "`listen` is for the server or proxy side, found it in the client script"
)]
#[case::max_zero(
    client("  { recv = true, max = 0 },"),
    4,
    24,
    "expected `max` of at least 1 byte, found 0"
)]
#[case::repeat_zero(
    client("  { send = \"hi\", repeat = 0 },"),
    4,
    27,
    "expected `repeat` of at least 1 copy, found 0"
)]
#[case::send_zero(
    client("  { send = 0 },"),
    4,
    12,
    "expected a positive number of bytes, found 0"
)]
#[case::bad_linger(
    client("  { set = { linger = \"x\" } },"),
    4,
    22,
    "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"x\""
)]
#[case::linger_not_whole_seconds(
    client("  { set = { linger = \"500ms\" } },"),
    4,
    22,
    "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"500ms\""
)]
#[case::linger_a_fraction_of_a_second_over(
    client("  { set = { linger = \"1.5s\" } },"),
    4,
    22,
    "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"1.5s\""
)]
#[case::unknown_option(
    client("  { set = { lingr = \"0s\" } },"),
    4,
    13,
    "unknown field `lingr`, expected one of `linger`, `nodelay`, `keepalive`, `rcvbuf`, `sndbuf`"
)]
#[case::empty_state(
    client("  { state = {} },"),
    4,
    13,
    "expected a state for `client`, `server`, `proxy_client` or `proxy_server`, found none"
)]
#[case::missing_name("[[case]]\nclient = [\"close\"]\n".into(), 1, 1, "expected a `name` for this case, found none")]
#[case::name_not_a_string("[[case]]\nname = 5\nclient = [\"close\"]\n".into(), 2, 8, "expected a string, found integer `5`")]
#[case::duplicate_name("[[case]]\nname = \"a\"\nclient = [\"close\"]\n\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 6, 8, "expected a case name unique in this suite, found `a` again (first at line 2, column 8): test names must be unique")]
#[case::bad_name("[[case]]\nname = \"a b\"\nclient = [\"close\"]\n".into(), 2, 8, "expected a case name of letters, digits, `_` and `-`, found `a b`")]
#[case::no_script("[[case]]\nname = \"a\"\n".into(), 1, 1, "expected a `client`, `server` or `proxy` script in this case, found none")]
#[case::script_not_an_array("[[case]]\nname = \"a\"\nclient = \"close\"\n".into(), 3, 10, "expected `client` to be an array of steps, found string")]
#[case::unknown_case_key("[[case]]\nname = \"a\"\nclient = [\"close\"]\nsevrer = []\n".into(), 4, 1, "unknown key `sevrer` in a case, expected one of `name`, `description`,")]
#[case::unknown_top_key("descripton = \"x\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "unknown key `descripton` at the top of a suite, expected one of `description`,")]
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
    "expected at least one `[[case]]` table, found none"
)]
#[case::case_not_an_array("case = 5\n".into(), 1, 8, "expected `case` to be an array of tables (`[[case]]`), found integer")]
#[case::case_a_single_table("[case]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "expected `case` to be an array of tables (`[[case]]`), found table")]
#[case::no_cases("case = []\n".into(), 1, 8, "expected at least one `[[case]]` table, found none")]
#[case::empty_client("[[case]]\nname = \"a\"\nclient = []\n".into(), 3, 10, "expected at least one step in `client`, found none")]
#[case::empty_server_beside_a_client("[[case]]\nname = \"a\"\nclient = [\"close\"]\nserver = []\n".into(), 4, 10, "expected at least one step in `server`, found none")]
#[case::case_not_tables("case = [1]\n".into(), 1, 9, "expected a case table, found integer")]
#[case::send_size_over_the_limit(
    client("  { send = 1_000_000_000_000 },"),
    4,
    12,
    "expected at most 256 MiB (268435456 bytes) to send, found 1000000000000"
)]
#[case::send_size_just_over_the_limit(
    client("  { send = 268_435_457 },"),
    4,
    12,
    "expected at most 256 MiB (268435456 bytes) to send, found 268435457"
)]
#[case::send_repeat_over_the_limit(
    client("  { send = \"ab\", repeat = 134_217_729 },"),
    4,
    27,
    "expected at most 256 MiB (268435456 bytes) to send in all, found 134217729 copies of 2 bytes"
)]
#[case::send_repeat_overflowing(
    client("  { send = \"abcdefgh\", repeat = 4_000_000_000_000_000_000 },"),
    4,
    33,
    "expected at most 256 MiB (268435456 bytes) to send in all, found 4000000000000000000 copies of 8 bytes"
)]
#[case::recv_max_over_the_limit(
    client("  { recv = true, max = 1_000_000_000_000 },"),
    4,
    24,
    "expected `max` of at most 64 MiB (67108864 bytes), found 1000000000000"
)]
#[case::sleep_over_a_day(
    client("  { sleep = \"25h\" },"),
    4,
    13,
    "expected a duration of at most \"24h\", found \"25h\""
)]
#[case::timeout_near_the_maximum(
    client("  { recv = true, timeout = \"18446744073709551615s\" },"),
    4,
    28,
    "expected a duration of at most \"24h\", found \"18446744073709551615s\""
)]
#[case::within_near_the_maximum(
    client("  { state = { client = \"gone\" }, within = \"584542046090y\" },"),
    4,
    43,
    "expected a duration of at most \"24h\", found \"584542046090y\""
)]
#[case::after_over_a_day(
    client("  { recv = true, after = \"2days\" },"),
    4,
    26,
    "expected a duration of at most \"24h\", found \"2days\""
)]
#[case::deadline_over_a_day("deadline = \"18446744073709551615s\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 12, "expected a duration of at most \"24h\", found \"18446744073709551615s\"")]
#[case::tolerance_floor_over_a_day("[[case]]\nname = \"a\"\ntolerance = { floor = \"100000h\" }\nclient = [\"close\"]\n".into(), 3, 23, "expected a duration of at most \"24h\", found \"100000h\"")]
fn one_problem(
    #[case] text: String,
    #[case] line: usize,
    #[case] column: usize,
    #[case] message: &str,
) {
    let (l, c, m) = problem(&text);
    assert!(
        m.starts_with(message),
        "expected a message starting with {message:?}, found {m:?}"
    );
    assert_eq!((l, c), (line, column), "for {m:?}");
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
fn unknown_action_lists_every_action_and_modifier() {
    let (_, _, message) = problem(&client("  { conect = 8080 },"));
    for name in catalog()
        .map(|d| d.keyword)
        .chain(["timeout", "within", "expect", "longer_than"])
    {
        assert!(
            message.contains(&format!("`{name}`")),
            "{name} missing from {message:?}"
        );
    }
}

#[test]
fn every_unknown_errno_in_a_list_is_reported_at_itself() {
    let text = client("  { connect = 8080, expect = [\"EFOO\", \"ok\", \"EBAR\"] },");
    let all = problems(text.as_bytes());
    let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(at, [(4, 31), (4, 45)], "{all:#?}");
}

#[test]
fn expect_lists_parse() {
    let text = client("  { connect = 8080, expect = [\"ECONNREFUSED\", \"ok\"] },");
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
    let expect = suite.cases[0].scripts[0].steps[0].expect.clone().unwrap();
    assert_eq!(
        expect.result,
        [Outcome::Errno("ECONNREFUSED".parse().unwrap()), Outcome::Ok]
    );
}

#[test]
fn unknown_errno_lists_the_known_names() {
    let (_, _, message) = problem(&client("  { connect = 8080, expect = \"ECONRESET\" },"));
    for name in crate::model::Errno::known_names() {
        assert!(message.contains(name), "{name} missing from {message:?}");
    }
}

#[rstest]
#[case("0", 0)]
#[case("200ms", 200_000)]
#[case("200 ms", 200_000)]
#[case("1.5s", 1_500_000)]
#[case("0.5s", 500_000)]
#[case("1.5 s", 1_500_000)]
#[case("1s 500ms", 1_500_000)]
#[case("2m", 120_000_000)]
// Fractions on any unit, not only on a trailing `s`.
#[case("1.5ms", 1_500)]
#[case("1.5secs", 1_500_000)]
#[case("1.5m", 90_000_000)]
#[case("1s 0.5ms", 1_000_500)]
#[case("1.5s 200ms", 1_700_000)]
fn durations(#[case] written: &str, #[case] micros: u64) {
    let text = client(&format!("  {{ sleep = \"{written}\" }},"));
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
    let action = &suite.cases[0].scripts[0].steps[0].action;
    assert_eq!(
        action,
        &Action::Control(Control::Sleep(Duration::from_micros(micros)))
    );
}

#[rstest]
// humantime wants a digit before and after the point.
#[case(".5s", "")]
#[case("1.s", "")]
#[case("1.5e3s", "")]
#[case("+1.5s", "")]
// Finer than a nanosecond.
#[case("1.5ns", "")]
// Spaces around the value, with or without a unit.
#[case(" 1s", " without spaces around it")]
#[case("1s ", " without spaces around it")]
#[case("0.5ms ", " without spaces around it")]
#[case(" 0", " without spaces around it")]
#[case("0 ", " without spaces around it")]
fn rejected_durations(#[case] written: &str, #[case] hint: &str) {
    let (_, _, message) = problem(&client(&format!("  {{ sleep = \"{written}\" }},")));
    assert_eq!(
        message,
        format!(
            "expected a duration like \"200ms\", \"1.5s\" or \"2m\"{hint}, found \"{written}\""
        )
    );
}

#[rstest]
#[case("off", None)]
#[case("0s", Some(0))]
#[case("0", Some(0))]
#[case("5s", Some(5))]
// Whole seconds however written.
#[case("1000ms", Some(1))]
#[case("1.5m", Some(90))]
fn lingers(#[case] written: &str, #[case] secs: Option<u64>) {
    let text = client(&format!("  {{ set = {{ linger = \"{written}\" }} }},"));
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
    let Action::Socket(SocketCall::Set(options)) = &suite.cases[0].scripts[0].steps[0].action
    else {
        panic!("expected a `set` step");
    };
    assert_eq!(options.linger, Some(secs.map(Duration::from_secs)));
    // What reports show is what the kernel is given.
    let shown = secs.map_or("linger=off".to_string(), |s| format!("linger={s}s"));
    assert_eq!(options.to_string(), shown);
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
            (6, 5, "unknown field `conect`"),
            (7, 3, "expected \"accept\""),
            (8, 13, "expected a duration like \"200ms\""),
            (11, 14, "expected a loopback address"),
            (12, 27, "`within` does not apply to `recv`"),
            (15, 1, "expected a `name` for this case"),
            (16, 12, "`kernel.pid_max` may not be set: it is host-wide"),
            (18, 30, "expected \"ok\""),
            (19, 24, "unknown TCP state `ESTABLISHD`"),
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
    "unknown field `restart`"
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
#[case::same_versions(
    with_program("run = [\"./s\"]\nport = 8080\ncompare = [{ name = \"a\" }, { name = \"a\" }]"),
    "expected two different version names, found `a` twice"
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
    assert_eq!(names, ["leaves@1.0", "leaves@1.1"]);
    let program = |i: usize| suite.cases[i].program.as_ref().expect("a program");
    assert_eq!(program(0).argv, ["./server", "--port", "{port}"]);
    assert_eq!(
        program(0).env,
        [
            ("MODE".to_string(), "test".to_string()),
            ("LEVEL".to_string(), "2".to_string())
        ]
    );
    assert_eq!(program(1).argv, ["./server-1.1", "--port", "{port}"]);
    let version = suite.cases[0].version.as_ref().expect("a version");
    assert_eq!(
        (version.case.as_str(), version.name.as_str(), version.base),
        ("leaves", "1.0", true)
    );
    assert!(!suite.cases[1].version.as_ref().expect("a version").base);
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

/// The limits themselves are allowed: only beyond them is refused.
#[test]
fn sizes_and_durations_at_their_limits_parse() {
    let steps = "  { send = 268_435_456 },\n  { send = \"ab\", repeat = 134_217_728 },\n  { recv = true, max = 67_108_864 },\n  { sleep = \"24h\" },";
    let suite = format!("deadline = \"24h\"\n{}", client(steps));
    if let Err(err) = parse_suite(Path::new(PATH), suite.as_bytes()) {
        panic!("expected the suite to parse, found {err}");
    }
    assert_eq!(
        crate::suite::action::values::parse_duration(crate::suite::limits::MAX_DURATION_WORDS),
        Ok(crate::suite::limits::MAX_DURATION)
    );
}

/// A `times` whose value is refused is reported once, as refused, not
/// also as missing.
#[rstest]
#[case("-1")]
#[case("5_000_000_000")]
fn a_refused_times_is_not_also_missing(#[case] times: &str) {
    let text =
        format!("[[case]]\nname = \"a\"\nclient = [{{ loop = [\"close\"], times = {times} }}]\n");
    let all = problems(text.as_bytes());
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].2.starts_with("expected u32, found integer"),
        "{all:#?}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_parsed() {
    let big = vec![b'#'; crate::suite::limits::MAX_FILE_BYTES + 1];
    let (line, column, message) = problem_in(&big);
    assert_eq!((line, column), (1, 1));
    assert!(message.contains("at most 4 MiB"), "{message}");
}

#[test]
fn too_many_cases_in_a_file_is_one_problem_naming_the_limit() {
    let case = "[[case]]\nname = \"a\"\nclient = [\"close\"]\n";
    let text = case.repeat(crate::suite::limits::MAX_CASES_PER_FILE + 1);
    let (_, _, message) = problem(&text);
    assert!(
        message.contains("at most 10000 cases") && message.contains("found 10001"),
        "{message}"
    );
}

#[test]
fn too_many_steps_in_a_case_counting_loops_is_one_problem_naming_the_limit() {
    let half = crate::suite::limits::MAX_STEPS_PER_CASE / 2;
    let body = "{ sleep = \"1ms\" }, ".repeat(half);
    // The client's loop holds half, the server's script the other half and
    // one more: over the limit only with the loop's steps counted.
    let text = format!(
        "[[case]]\nname = \"a\"\nclient = [{{ loop = [{body}], times = 1 }}]\nserver = [{body} {{ sleep = \"1ms\" }}]\n"
    );
    let (line, _, message) = problem(&text);
    assert_eq!(line, 4, "{message}");
    assert!(message.contains("at most 10000 steps"), "{message}");
    // At the limit it parses.
    let text = format!(
        "[[case]]\nname = \"a\"\nclient = [{{ loop = [{body}], times = 1 }}]\nserver = [{body}]\n"
    );
    let text = text.replacen("{ sleep = \"1ms\" }, ", "", 1);
    parse_suite(Path::new(PATH), text.as_bytes()).expect("at the limit");
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

#[rstest]
#[case::fault_on_a_side_without_a_port(
    client("  { connect = 8080 },\n  { drop = \"server\" },"),
    5,
    3,
    "expected a fault on what a side sends through a port this case names, found none for what the server sends"
)]
#[case::fault_to_itself(
    client("  { connect = 8080 },\n  { drop = \"client\", to = \"client\" },"),
    5,
    27,
    "expected `to` to name the side the client sends to, found the client itself"
)]
#[case::delay_without_by(
    client("  { connect = 8080 },\n  { delay = \"client\" },"),
    5,
    13,
    "expected `by` with `delay` (how long each packet is held, e.g. \"200ms\"), found none"
)]
#[case::delay_by_zero(
    client("  { connect = 8080 },\n  { delay = \"client\", by = \"0s\" },"),
    5,
    28,
    "expected `by` above 0 and at most 1m, found 0s"
)]
#[case::delay_too_long(
    client("  { connect = 8080 },\n  { delay = \"client\", by = \"2m\" },"),
    5,
    28,
    "expected `by` above 0 and at most 1m, found 2m"
)]
#[case::jitter_over_by(
    client("  { connect = 8080 },\n  { delay = \"client\", by = \"10ms\", jitter = \"20ms\" },"),
    5,
    45,
    "expected `jitter` at most `by` (10ms), found 20ms: a packet cannot arrive before it was sent"
)]
#[case::by_on_a_drop(
    client("  { connect = 8080 },\n  { drop = \"client\", by = \"10ms\" },"),
    5,
    27,
    "`by`"
)]
#[case::probability_zero(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 0.0 },"),
    5,
    36,
    "expected `probability` above 0 and at most 1, found 0"
)]
#[case::probability_over_one(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 1.5 },"),
    5,
    36,
    "expected `probability` above 0 and at most 1, found 1.5"
)]
#[case::fault_named_all(
    client("  { connect = 8080 },\n  { drop = \"client\", name = \"all\" },"),
    5,
    29,
    "expected a fault's `name` of 1 to 64 characters other than \"all\""
)]
#[case::flags_not_matched(
    client("  { connect = 8080 },\n  { drop = \"client\", flags = \"PSH\" },"),
    5,
    30,
    "expected TCP flags such as \"SYN\", \"ACK\" or \"FIN|ACK\" (of SYN, FIN, RST, ACK), found `PSH`"
)]
#[case::reject_with_what(
    client("  { connect = 8080 },\n  { reject = \"client\", with = \"icmp\" },"),
    5,
    31,
    "expected how to reject, one of `tcp-reset`, `port-unreachable`, `host-unreachable`, `admin-prohibited`, found `icmp`"
)]
#[case::with_on_a_drop(
    client("  { connect = 8080 },\n  { drop = \"client\", with = \"tcp-reset\" },"),
    5,
    29,
    "`with` does not apply to `drop`"
)]
#[case::fault_side_unknown(
    client("  { connect = 8080 },\n  { drop = \"laptop\" },"),
    5,
    12,
    "expected a side, \"client\", \"proxy\" or \"server\", found \"laptop\""
)]
#[case::lift_of_an_unknown_name(
    client("  { connect = 8080 },\n  { drop = \"client\", name = \"p\" },\n  { lift = \"q\" },"),
    6,
    3,
    "expected `lift` of a fault this case names, found \"q\"; its faults are named \"p\""
)]
#[case::lift_all_without_a_fault(
    client("  { lift = \"all\" },"),
    4,
    3,
    "expected `lift = \"all\"` in a case with a fault, found no `drop` or `reject`: it would lift nothing"
)]
#[case::two_faults_of_one_name(
    client(
        "  { connect = 8080 },\n  { drop = \"client\", name = \"p\" },\n  { reject = \"client\", name = \"p\" },"
    ),
    6,
    3,
    "expected each fault's `name` once in a case, found \"p\" again"
)]
#[case::first_without_flags(
    client("  { connect = 8080 },\n  { first = \"client\" },"),
    5,
    13,
    "expected `flags` with `first` (the first segment with which flags: \"FIN\", \"RST\"), found none"
)]
#[case::sent_by_a_side_without_a_port(
    client("  { connect = 8080 },\n  { sent = \"server\", flags = \"RST\" },"),
    5,
    3,
    "expected a count of what a side sends through a port this case names, found none for what the server sends"
)]
#[case::window_too_large(
    client("  { connect = 8080 },\n  { sent = \"client\", window = 70000 },"),
    5,
    31,
    "expected u16, found integer `70000`"
)]
#[case::since_a_label_nobody_marks(
    client("  { connect = 8080 },\n  { sent = \"client\", since = \"x\" },"),
    5,
    3,
    "expected `since` to name a label some side marks, found \"x\" and no `mark` of it"
)]
#[case::taken_of_an_unknown_name(
    client("  { connect = 8080 },\n  { taken = \"x\" },"),
    5,
    3,
    "expected `taken` of a fault this case names, found \"x\"; its faults are named nothing"
)]
fn a_fault_that_cannot_work_is_refused_where_it_is_written(
    #[case] text: String,
    #[case] line: usize,
    #[case] column: usize,
    #[case] message: &str,
) {
    let (l, c, m) = problem(&text);
    assert!(
        m.starts_with(message),
        "expected a message starting with {message:?}, found {m:?}"
    );
    assert_eq!((l, c), (line, column), "for {m:?}");
}

#[rstest]
#[case::unknown_topology(
    "[[case]]\nname = \"a\"\ntopology = \"three_hosts\"\nclient = [{ connect = 8080 }]\n",
    "expected `topology` to be \"loopback\" (the default) or \"two_hosts\""
)]
#[case::a_proxy_on_two_hosts(
    "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nclient = [{ connect = 8081 }]\nproxy = [{ listen = 8081 }]\n",
    "expected a `client` and a `server` in a `two_hosts` case, found a `proxy`"
)]
#[case::a_client_program_on_two_hosts(
    "[program]\nrun = [\"./c\"]\nport = 8080\nrole = \"client\"\n\n[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nserver = [{ listen = 8080 }]\n",
    "expected the program under test to play the server in a `two_hosts` case, found it playing the client"
)]
#[case::the_suite_s_program_on_two_hosts(
    "[program]\nrun = [\"./s\"]\nport = 8080\nscope = \"suite\"\n\n[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nclient = [{ connect = 8080 }]\n",
    "expected a case's own program in a `two_hosts` case, found the suite's"
)]
#[case::an_address_on_two_hosts(
    "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nclient = [{ connect = \"[::1]:8080\" }]\n",
    "expected a bare port (the server's host, 198.18.0.2) in a `two_hosts` case, found [::1]:8080"
)]
#[case::cut_on_one_loopback(
    "[[case]]\nname = \"a\"\nclient = [{ connect = 8080 }, { cut = \"client\" }]\n",
    "expected `cut` in a case with `topology = \"two_hosts\"`, found it on one loopback"
)]
#[case::cut_with_what(
    "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nclient = [{ connect = 8080 }, { cut = \"client\", with = \"cable\" }]\n",
    "expected how to cut a host off, `link_down` (the default) or `blackhole`, found `cable`"
)]
#[case::taken_of_a_cut(
    "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nclient = [{ connect = 8080 }, { cut = \"client\", name = \"c\" }, { taken = \"c\" }]\n",
    "expected `taken` of a `drop`, `reject` or `delay`, found \"c\", a `cut`"
)]
#[case::fault_in_a_shared_program_case(
    "[program]\nrun = [\"./s\"]\nport = 8080\nscope = \"suite\"\n\n[[case]]\nname = \"a\"\nclient = [{ connect = 8080 }, { drop = \"client\" }]\n",
    "expected no fault in a case that shares the suite's program (`scope = \"suite\"`), found one"
)]
#[case::to_a_side_it_does_not_talk_to(
    "[[case]]\nname = \"a\"\nserver = [{ listen = 9000 }]\nclient = [{ connect = 8080 }, { drop = \"client\", to = \"server\" }]\n",
    "expected a fault on what a side sends through a port this case names, found none for what the client to the server sends: the client neither listens on nor connects to a port the other side connects to or listens on"
)]
fn a_fault_that_cannot_work_across_scripts_is_refused(#[case] text: &str, #[case] message: &str) {
    let (_, _, m) = problem(text);
    assert!(m.starts_with(message), "expected {message:?}, found {m:?}");
}

#[test]
fn a_delay_reads_by_and_jitter() {
    let text = client(
        "  { connect = 8080 },\n  { delay = \"client\", by = \"200ms\", jitter = \"50ms\", flags = \"ACK\", name = \"slow\" },\n  { lift = \"slow\" },",
    );
    let text = text.replace("[[case]]", "[[case]]\nserver = [{ listen = 8080 }]");
    let suite = parse_suite(Path::new("faults.toml"), text.as_bytes()).expect("valid");
    let steps = &suite.cases[0].scripts[0].steps;
    let Action::Control(Control::Fault(fault)) = &steps[1].action else {
        panic!("{:?}", steps[1].action);
    };
    assert_eq!(
        fault.verdict,
        crate::model::Verdict::Delay {
            by: Duration::from_millis(200),
            jitter: Duration::from_millis(50)
        }
    );
    assert_eq!(
        fault.to_string(),
        "delay by 200ms ± 50ms what client sends (ACK segments) as \"slow\""
    );
}

#[test]
fn a_fault_reads_every_modifier() {
    let text = client(
        "  { connect = 8080 },\n  { reject = \"client\", to = \"server\", flags = \"FIN|ACK\", data = false, probability = 0.5, name = \"p\", with = \"host-unreachable\" },\n  { taken = \"p\", at_most = 3, within = \"1s\" },\n  { lift = \"p\" },",
    );
    let text = text.replace("[[case]]", "[[case]]\nserver = [{ listen = 8080 }]");
    let suite = parse_suite(Path::new("faults.toml"), text.as_bytes()).expect("valid");
    let steps = &suite.cases[0].scripts[0].steps;
    let Action::Control(Control::Fault(fault)) = &steps[1].action else {
        panic!("{:?}", steps[1].action);
    };
    assert_eq!(fault.from, Side::Client);
    assert_eq!(fault.to, Some(Side::Server));
    assert_eq!(fault.flags, Some(crate::model::TcpFlags(0x11)));
    assert_eq!(fault.data, Some(false));
    assert_eq!(fault.probability, Some(0.5));
    assert_eq!(fault.name.as_deref(), Some("p"));
    assert_eq!(
        fault.verdict,
        crate::model::Verdict::Reject {
            with: crate::model::Reject::HostUnreachable
        }
    );
    assert_eq!(
        suite.cases[0].fault_ports(fault),
        [crate::model::Port::Destination(8080)]
    );
    assert_eq!(
        steps[2].action,
        Action::Check(Check::Taken {
            name: "p".into(),
            packets: crate::suite::LineCount::AtMost(3),
            within: Some(Duration::from_secs(1)),
        })
    );
    assert_eq!(
        steps[3].action,
        Action::Control(Control::Lift(crate::suite::Lift::Named("p".into())))
    );
}

#[test]
fn on_two_hosts_a_bare_port_is_the_server_s_host() {
    let text = "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nserver = [{ listen = 8080 }]\nclient = [{ connect = 8080 }, { loop = [{ connect = 8080 }], times = 2 }]\n";
    let suite = parse_suite(Path::new("two.toml"), text.as_bytes()).expect("valid");
    let case = &suite.cases[0];
    assert_eq!(case.topology, crate::suite::Topology::TwoHosts);
    let server: std::net::SocketAddr = "198.18.0.2:8080".parse().unwrap();
    let addresses: Vec<std::net::SocketAddr> = case
        .scripts
        .iter()
        .flat_map(|s| crate::suite::every_step(&s.steps))
        .filter_map(|step| match &step.action {
            Action::Socket(SocketCall::Listen { addr, .. } | SocketCall::Connect { addr, .. }) => {
                Some(*addr)
            }
            _ => None,
        })
        .collect();
    assert_eq!(addresses, [server, server, server]);
}
