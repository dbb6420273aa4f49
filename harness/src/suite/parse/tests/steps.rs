//! One step read on its own: each action and modifier, expectations and
//! their errno lists, and the problem a bad one reports, where it is.

use super::*;

#[rstest]
#[case::unknown_action(
    client("  { conect = 8080 },"),
    4,
    5,
    "unknown field `conect`: did you mean `connect`?"
)]
#[case::unknown_action_near_none(
    client("  { frobnicate = 8080 },"),
    4,
    5,
    "unknown field `frobnicate`, expected one of `listen`, `accept`, `connect`,"
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
    "expected \"ok\", \"EOF\" or an errno name, found \"ECONRESET\" (unknown errno `ECONRESET`: did you mean ECONNRESET?)"
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
    "unknown TCP state `ESTABLISHD`: did you mean ESTABLISHED?"
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
fn one_problem_in_a_step(
    #[case] text: String,
    #[case] line: usize,
    #[case] column: usize,
    #[case] message: &str,
) {
    assert_one_problem(&text, line, column, message);
}

#[test]
fn unknown_action_lists_every_action_and_modifier() {
    let (_, _, message) = problem(&client("  { frobnicate = 8080 },"));
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
    let (_, _, message) = problem(&client("  { connect = 8080, expect = \"EFOO\" },"));
    for name in crate::model::Errno::known_names() {
        assert!(message.contains(name), "{name} missing from {message:?}");
    }
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
