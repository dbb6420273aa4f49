//! A case with the most faults `check` allows, and one with the most
//! rules, each put in place and lifted within the case's own deadline,
//! through the real `hangup` binary. Nothing here times anything: the
//! deadline is the bound, and a case that overruns it fails.
//!
//! Each case's last fault drops the client's FIN, and the kernel's count
//! of it is checked before the faults are lifted and after: so the faults
//! were really in place, the last put as well as the first, and lifting
//! them really let the FIN through (the server reads its EOF).

use std::process::Command;

use hangup::fault::RULES_WITH_DATA;
use hangup::suite::limits::{MAX_FAULT_RULES_PER_CASE, MAX_FAULTS_PER_CASE};

/// The server's script: the client's connection, then its EOF, which
/// comes once the FIN goes through.
const SERVER: &str = r#"server = [{ listen = 9000 }, { mark = "up" }, "accept", { recv = true, expect = "EOF", timeout = "25s" }]"#;

/// A case whose client connects, puts `faults` (each a line of the
/// script), then one that drops its FIN; closes, waits until the kernel
/// counted that FIN, then runs `lifts` and reads the count again.
fn case(name: &str, faults: &[String], lifts: &[String]) -> String {
    let mut client = vec![
        r#"{ wait = "up", timeout = "5s" }"#.to_string(),
        "{ connect = 9000 }".to_string(),
    ];
    client.extend_from_slice(faults);
    client.push(r#"{ drop = "client", flags = "FIN", name = "fin" }"#.to_string());
    client.push(r#""close""#.to_string());
    client.push(r#"{ taken = "fin", within = "5s" }"#.to_string());
    client.extend_from_slice(lifts);
    client.push(r#"{ taken = "fin" }"#.to_string());
    format!(
        "[[case]]\nname = \"{name}\"\n{SERVER}\nclient = [\n  {}\n]\n",
        client.join(",\n  ")
    )
}

/// The suite: a case at [`MAX_FAULTS_PER_CASE`] (one rule each, half
/// lifted one by one by name, the rest at once), and one at
/// [`MAX_FAULT_RULES_PER_CASE`] (faults of 22 rules each, narrowed by
/// `data`, lifted at once). The suite's deadline is the default, written
/// out: it is what the test holds them to.
fn suite() -> String {
    let others = MAX_FAULTS_PER_CASE - 1;
    let named: Vec<String> = (0..others)
        .map(|i| {
            if i < others / 2 {
                format!(r#"{{ drop = "client", flags = "RST", name = "f{i}" }}"#)
            } else {
                r#"{ drop = "client", flags = "RST" }"#.to_string()
            }
        })
        .collect();
    let mut lifts: Vec<String> = (0..others / 2)
        .map(|i| format!(r#"{{ lift = "f{i}" }}"#))
        .collect();
    lifts.push(r#"{ lift = "all" }"#.to_string());
    let most_faults = case("most_faults", &named, &lifts);

    // The FIN's fault makes one rule; the rest as many of 22 as fit.
    let with_data = (MAX_FAULT_RULES_PER_CASE - 1) / RULES_WITH_DATA;
    let wide = vec![r#"{ drop = "client", flags = "RST", data = true }"#.to_string(); with_data];
    let most_rules = case("most_rules", &wide, &[r#"{ lift = "all" }"#.to_string()]);
    format!("deadline = \"30s\"\n\n{most_faults}\n{most_rules}")
}

#[test]
fn the_most_faults_and_rules_a_case_may_have_put_and_lift_within_its_deadline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fault_limits.toml");
    std::fs::write(&path, suite()).expect("write the suite");
    let text = std::fs::read(&path).expect("read the suite");
    let check = hangup::suite::parse_suite(&path, &text).expect("the suite is valid");
    let rules: Vec<usize> = check
        .cases
        .iter()
        .map(|case| {
            case.scripts
                .iter()
                .flat_map(|s| &s.steps)
                .filter_map(|step| match &step.action {
                    hangup::suite::Action::Control(hangup::suite::Control::Fault(f)) => Some(
                        case.fault_ports(f).len() * hangup::fault::rules_per_port(f.outgoing.data),
                    ),
                    _ => None,
                })
                .sum()
        })
        .collect();
    // At the limits, or within a fault's rules of them.
    assert_eq!(rules[0], MAX_FAULTS_PER_CASE);
    assert!(
        MAX_FAULT_RULES_PER_CASE - rules[1] < RULES_WITH_DATA,
        "{rules:?}"
    );

    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(&path)
        .arg("--json")
        .arg(&json)
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("run hangup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        tail(&stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{}", tail(&stdout));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("a JSON report")).expect("JSON");
    let cases = report["rounds"][0]["cases"]
        .as_array()
        .expect("the round's cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        assert_eq!(case["status"], "passed", "{}", case["name"]);
    }
}

/// The end of a long output, where the summary and a failure are.
fn tail(text: &str) -> &str {
    let from = text.len().saturating_sub(4000);
    let from = (from..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[from..]
}
