//! What a case asks of the network: faults (`drop`, `reject`, `delay`)
//! and their modifiers, `lift` and `taken`, `cut`, and the `two_hosts`
//! topology, refused where they could not work.

use super::*;

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
    "expected `probability` from 2^-32 (2.328e-10, the least chance nf_tables' 32-bit random number can express) to 1, found 0"
)]
#[case::probability_over_one(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 1.5 },"),
    5,
    36,
    "expected `probability` from 2^-32 (2.328e-10, the least chance nf_tables' 32-bit random number can express) to 1, found 1.5"
)]
#[case::probability_the_kernel_cannot_draw(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 1e-300 },"),
    5,
    36,
    "expected `probability` from 2^-32 (2.328e-10, the least chance nf_tables' 32-bit random number can express) to 1, found 1e-300"
)]
#[case::probability_just_under_the_least(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 2.3e-10 },"),
    5,
    36,
    "expected `probability` from 2^-32"
)]
#[case::probability_huge(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = 1e300 },"),
    5,
    36,
    "expected `probability` from 2^-32 (2.328e-10, the least chance nf_tables' 32-bit random number can express) to 1, found 1e300"
)]
#[case::probability_nan(
    client("  { connect = 8080 },\n  { drop = \"client\", probability = nan },"),
    5,
    36,
    "expected `probability` from 2^-32 (2.328e-10, the least chance nf_tables' 32-bit random number can express) to 1, found NaN"
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
    "expected TCP flags such as \"SYN\", \"ACK\", \"FIN|ACK\" or \"RST|!ACK\" (of SYN, FIN, RST and ACK, joined by `|`; `!ACK`: ACK clear), found `PSH`"
)]
#[case::flags_ack_set_and_clear(
    client("  { connect = 8080 },\n  { sent = \"client\", flags = \"RST|ACK|!ACK\" },"),
    5,
    30,
    "expected ACK set or clear (`!ACK`), not both, found `RST|ACK|!ACK`"
)]
#[case::flags_not_before_syn(
    client("  { connect = 8080 },\n  { first = \"client\", flags = \"RST|!SYN\" },"),
    5,
    31,
    "expected `!` only before ACK (SYN, FIN and RST are clear unless named), found `RST|!SYN`"
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
    assert_one_problem(&text, line, column, message);
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

/// The least chance the kernel can draw, 2^-32, is accepted, and shown
/// as a short percentage (not a decimal 300 digits long).
#[test]
fn the_least_probability_is_accepted_and_shown_short() {
    let text = client(
        "  { connect = 8080 },\n  { drop = \"client\", probability = 2.3283064365386963e-10 },",
    );
    let suite = parse_suite(Path::new(PATH), text.as_bytes()).expect("valid");
    let Action::Control(Control::Fault(fault)) = &suite.cases[0].scripts[0].steps[1].action else {
        panic!("a fault");
    };
    assert_eq!(
        fault.probability,
        Some(crate::suite::limits::MIN_PROBABILITY)
    );
    assert_eq!(fault.to_string(), "drop what client sends (2.328e-8%)");
}

#[test]
fn a_bare_reset_is_named_with_not_ack() {
    let text = client(
        "  { connect = 8080 },\n  { drop = \"client\", flags = \"RST|!ACK\" },\n  { sent = \"client\", flags = \"RST|!ACK\", count = 1 },\n  { first = \"client\", flags = \"!ACK|RST\" },",
    );
    let suite = parse_suite(Path::new("bare.toml"), text.as_bytes()).expect("valid");
    let steps = &suite.cases[0].scripts[0].steps;
    let bare = crate::model::FlagMatch::parse("RST|!ACK").expect("valid");
    let Action::Control(Control::Fault(fault)) = &steps[1].action else {
        panic!("{:?}", steps[1].action);
    };
    assert_eq!(fault.outgoing.flags, Some(bare));
    assert_eq!(
        fault.to_string(),
        "drop what client sends (RST|!ACK segments)"
    );
    let Action::Check(Check::Sent { segments, .. }) = &steps[2].action else {
        panic!("{:?}", steps[2].action);
    };
    assert_eq!(segments.outgoing.flags, Some(bare));
    let Action::Check(Check::First { flags, .. }) = &steps[3].action else {
        panic!("{:?}", steps[3].action);
    };
    assert_eq!(*flags, bare);
    assert_eq!(steps[3].action.to_string(), "first RST|!ACK from client");
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
    assert_eq!(fault.outgoing.from, Side::Client);
    assert_eq!(fault.outgoing.to, Some(Side::Server));
    assert_eq!(
        fault.outgoing.flags,
        Some(crate::model::TcpFlags(0x11).into())
    );
    assert_eq!(fault.outgoing.data, Some(false));
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

/// A case whose client connects to `ports` ports the server listens on,
/// then runs `steps`.
fn faulty(ports: u16, steps: &str) -> String {
    let listens: String = (0..ports)
        .map(|i| format!("{{ listen = {} }}, ", 9000 + i))
        .collect();
    let connects: String = (0..ports)
        .map(|i| format!("{{ connect = {} }}, ", 9000 + i))
        .collect();
    format!("[[case]]\nname = \"a\"\nserver = [{listens}]\nclient = [{connects}\n{steps}]\n")
}

/// The column of the last `pattern` on line 5 (the client's steps).
fn last_on_line_5(text: &str, pattern: &str) -> usize {
    text.lines()
        .nth(4)
        .and_then(|l| l.rfind(pattern))
        .expect("on line 5")
        + 1
}

#[test]
fn a_case_puts_as_many_faults_as_the_limit_and_not_one_more() {
    let limit = crate::suite::limits::MAX_FAULTS_PER_CASE;
    let drop = "{ drop = \"client\" }, ";
    let at_limit = faulty(1, &drop.repeat(limit));
    parse_suite(Path::new(PATH), at_limit.as_bytes()).expect("at the limit");
    let text = faulty(
        1,
        &format!("{}{{ reject = \"client\" }}", drop.repeat(limit)),
    );
    assert_one_problem(
        &text,
        5,
        last_on_line_5(&text, "{ reject"),
        "expected at most 1000 faults put in place in a case, found 1001 by this fault: split the case",
    );
    // A cut is a fault too.
    let two_hosts = format!(
        "[[case]]\nname = \"a\"\ntopology = \"two_hosts\"\nserver = [{{ listen = 9000 }}]\nclient = [{{ connect = 9000 }}, {}{{ cut = \"client\" }}]\n",
        drop.repeat(limit)
    );
    assert_one_problem(
        &two_hosts,
        5,
        last_on_line_5(&two_hosts, "{ cut"),
        "expected at most 1000 faults put in place in a case, found 1001 by this cut: split the case",
    );
}

/// A fault in a loop is put once per round: `times` counts.
#[test]
fn a_fault_in_a_loop_counts_once_per_round() {
    let flap = |times: usize| {
        faulty(
            1,
            &format!(
                "{{ drop = \"client\" }}, {{ loop = [{{ sleep = \"1ms\" }}, {{ reject = \"client\", name = \"r\" }}, {{ lift = \"r\" }}], times = {times} }}"
            ),
        )
    };
    let limit = crate::suite::limits::MAX_FAULTS_PER_CASE;
    parse_suite(Path::new(PATH), flap(limit - 1).as_bytes()).expect("at the limit");
    let text = flap(limit);
    assert_one_problem(
        &text,
        5,
        last_on_line_5(&text, "{ reject"),
        "expected at most 1000 faults put in place in a case, found 1001 by this fault (a fault in a loop counts once per round: 1000 here): give the loop fewer rounds, or split the case",
    );
}

/// A fault makes a rule per port it matches, 22 with `data`: the rules are
/// bounded too, so many ports cannot multiply the faults' cost.
#[test]
fn a_case_s_faults_make_as_many_rules_as_the_limit_and_not_one_more() {
    let limit = crate::suite::limits::MAX_FAULT_RULES_PER_CASE;
    let per_fault = 2 * crate::fault::RULES_WITH_DATA;
    assert_eq!(limit % per_fault, 0, "the test fills the limit exactly");
    let drop = "{ drop = \"client\", data = true }, ";
    let at_limit = faulty(2, &drop.repeat(limit / per_fault));
    parse_suite(Path::new(PATH), at_limit.as_bytes()).expect("at the limit");
    let text = faulty(2, &drop.repeat(limit / per_fault + 1));
    assert_one_problem(
        &text,
        5,
        last_on_line_5(&text, "{ drop"),
        "expected at most 5500 nf_tables rules made by a case's faults, found 5544 by this fault: a fault makes one rule per port it matches, 22 with `data`; narrow it with `to`, or split the case",
    );
}

/// The suites of the issue that set the limit: two cases of 4,990 drops
/// each (they overran their deadlines), and 10,000 faults, here put by a
/// loop (as steps they would pass the steps' limit first).
#[test]
fn thousands_of_faults_are_refused_where_the_limit_is_passed() {
    let drop = "{ drop = \"client\" }, ";
    let case = faulty(1, &drop.repeat(4_990));
    let text = format!("{case}{}", case.replace("name = \"a\"", "name = \"b\""));
    let column = text
        .lines()
        .nth(4)
        .and_then(|l| l.match_indices("{ drop").nth(1000))
        .map(|(at, _)| at + 1)
        .expect("the 1001st fault");
    let found = problems(text.as_bytes());
    let message = "expected at most 1000 faults put in place in a case, found 1001 by this fault: split the case";
    assert_eq!(
        found,
        [
            (5, column, message.to_string()),
            (10, column, message.to_string())
        ]
    );
    let text = faulty(1, "{ loop = [{ drop = \"client\" }], times = 10000 }");
    assert_one_problem(
        &text,
        5,
        last_on_line_5(&text, "{ drop"),
        "expected at most 1000 faults put in place in a case, found 10000 by this fault (a fault in a loop counts once per round: 10000 here): give the loop fewer rounds, or split the case",
    );
}
