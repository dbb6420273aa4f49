//! What `hangup diff` will not read, through the binary: a report larger
//! than its cap (refused before it is read, naming the file, its size and
//! the cap), and a report whose round holds one case more than once
//! (refused naming the case and the file, escaped). Either exits 2 with no
//! summary line.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn hangup<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(args)
        .output()
        .expect("run hangup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A case that passed with nothing in its timeline, as a report holds it.
fn case(name: &str) -> Value {
    json!({
        "name": name,
        "suite": "s",
        "case": "c",
        "location": "s.toml:1:1",
        "status": "passed",
        "duration_ms": 1.0,
        "timeline": { "events": [] },
        "lateness_ms": 0.0,
    })
}

/// A report of these rounds' cases.
fn write_report(path: &Path, rounds: &[Vec<Value>]) {
    let rounds: Vec<Value> = rounds
        .iter()
        .enumerate()
        .map(|(i, cases)| json!({ "round": i + 1, "cases": cases }))
        .collect();
    let report = json!({ "format": 2, "tool": "hangup (test)", "rounds": rounds });
    std::fs::write(path, serde_json::to_vec_pretty(&report).expect("json")).expect("write");
}

/// Refused: exit 2, nothing on stdout, one line on stderr.
fn refused(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// The cap is 256 MiB: a file one byte over it (sparse, so nothing is
/// written) is refused from its size, before a byte is read, as base or
/// as new; its name is shown escaped.
#[test]
fn a_report_larger_than_the_cap_is_refused_naming_it_its_size_and_the_cap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let small = dir.path().join("small.json");
    write_report(&small, &[vec![case("s::a")]]);
    let huge = dir.path().join("huge\n0 differences.json");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len((256 << 20) + 1).expect("set_len");
    for (base, new) in [(&huge, &small), (&small, &huge)] {
        let out = hangup(&["diff".as_ref(), base.as_os_str(), new.as_os_str()]);
        assert_eq!(
            refused(&out),
            format!(
                "hangup: {}: it is 256.0 MiB (268435457 bytes), larger than the 256 MiB \
                 (268435456 bytes) hangup diff reads of a report\n",
                dir.path().join(r"huge\n0 differences.json").display()
            )
        );
    }
    // At the cap, it is read (and here found not to be JSON).
    file.set_len(256 << 20).expect("set_len");
    let out = hangup(&["diff".as_ref(), huge.as_os_str(), small.as_os_str()]);
    assert!(
        refused(&out).contains("it is not a hangup JSON report"),
        "{}",
        text(&out.stderr)
    );
}

/// Three entries of one case in a round were once compared as one,
/// silently: now the report is refused, naming the case, the round and the
/// file. The same case once in each round is what `--repeat` writes.
#[test]
fn a_case_more_than_once_in_a_round_is_refused_naming_it_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let good = path("good.json");
    write_report(
        &good,
        &[
            vec![case("s::a"), case("s::b")],
            vec![case("s::a"), case("s::b")],
        ],
    );
    let out = hangup(&["diff".as_ref(), good.as_os_str(), good.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("0 differences in 0 cases of 2 cases, 0 accepted")
    );
    let forged = "s::a\n0 differences in 0 cases of 1 case, 0 accepted\u{1b}]0;owned\u{7}";
    let thrice = path("thrice.json");
    write_report(
        &thrice,
        &[
            vec![case("s::a")],
            vec![case(forged), case("s::b"), case(forged), case(forged)],
        ],
    );
    for (base, new) in [(&good, &thrice), (&thrice, &good)] {
        let out = hangup(&["diff".as_ref(), base.as_os_str(), new.as_os_str()]);
        assert_eq!(
            refused(&out),
            format!(
                "hangup: {}: it holds case s::a\\n0 differences in 0 cases of 1 case, 0 accepted\
                 \\u{{1b}}]0;owned\\u{{7}} more than once in round 2, and a round runs each case \
                 once\n",
                thrice.display()
            )
        );
    }
}
