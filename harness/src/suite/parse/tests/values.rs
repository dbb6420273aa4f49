//! Values as a suite writes them: durations (what humantime takes and
//! what it refuses), lingers in whole seconds, and sizes and times at
//! and over their limits.

use super::*;

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
fn the_options_real_servers_set_read_as_the_kernel_takes_them() {
    let text = client(
        "  { set = { user_timeout = \"2.5s\", notsent_lowat = 16384, congestion = \"reno\", nonblocking = true }, expect = \"ok\" },\n  { set = { user_timeout = \"0s\", notsent_lowat = 0, nonblocking = false } },",
    );
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
    let steps = &suite.cases[0].scripts[0].steps;
    let Action::Socket(SocketCall::Set(options)) = &steps[0].action else {
        panic!("expected a `set` step");
    };
    assert_eq!(options.user_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(options.notsent_lowat, Some(16384));
    assert_eq!(options.congestion.as_deref(), Some("reno"));
    assert_eq!(options.nonblocking, Some(true));
    // What reports show is what the kernel is given.
    assert_eq!(
        options.to_string(),
        "user_timeout=2500ms notsent_lowat=16384 congestion=reno nonblocking=true"
    );
    let Action::Socket(SocketCall::Set(defaults)) = &steps[1].action else {
        panic!("expected a `set` step");
    };
    assert_eq!(
        defaults.to_string(),
        "user_timeout=0ms notsent_lowat=0 nonblocking=false"
    );
}

#[rstest]
#[case(
    "1.5ms",
    "expected whole milliseconds like \"500ms\" or \"2s\" (TCP_USER_TIMEOUT counts milliseconds), found \"1.5ms\""
)]
#[case(
    "1s 1us",
    "expected whole milliseconds like \"500ms\" or \"2s\" (TCP_USER_TIMEOUT counts milliseconds), found \"1s 1us\""
)]
#[case("25h", "expected a duration of at most \"24h\", found \"25h\"")]
#[case(
    "2",
    "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"2\""
)]
fn rejected_user_timeouts(#[case] written: &str, #[case] message: &str) {
    let text = client(&format!(
        "  {{ set = {{ user_timeout = \"{written}\" }} }},"
    ));
    assert_eq!(problem(&text), (4, 28, message.to_string()));
}

#[rstest]
#[case(
    "-1",
    "expected a byte count from 0 (the namespace's default) to 2147483647 (the kernel reads an int), found -1"
)]
#[case(
    "2147483648",
    "expected a byte count from 0 (the namespace's default) to 2147483647 (the kernel reads an int), found 2147483648"
)]
fn rejected_lowats(#[case] written: &str, #[case] message: &str) {
    let text = client(&format!("  {{ set = {{ notsent_lowat = {written} }} }},"));
    assert_eq!(problem(&text), (4, 29, message.to_string()));
}

#[rstest]
#[case("", "\"\"")]
#[case("sixteen_letters_", "\"sixteen_letters_\"")]
#[case("re no", "\"re no\"")]
#[case("re\\u0000no", "\"re\\u{0}no\"")]
#[case("rénø", "\"rénø\"")]
fn rejected_congestion_names(#[case] written: &str, #[case] shown: &str) {
    let text = client(&format!("  {{ set = {{ congestion = \"{written}\" }} }},"));
    assert_eq!(
        problem(&text),
        (
            4,
            26,
            format!(
                "expected a congestion control algorithm's name like \"reno\" or \"cubic\": 1 to 15 ASCII letters, digits, `_` or `-` (the kernel reads 15 bytes at most), found {shown}"
            )
        )
    );
}

#[rstest]
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
fn one_problem_over_a_limit(
    #[case] text: String,
    #[case] line: usize,
    #[case] column: usize,
    #[case] message: &str,
) {
    assert_one_problem(&text, line, column, message);
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
