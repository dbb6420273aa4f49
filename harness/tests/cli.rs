//! `hangup run` as a user meets it: what it refuses, what it counts and
//! lists, and how JUnit tells a failed expectation from a case that could
//! not be judged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hangup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(args)
        .output()
        .expect("run hangup")
}

fn broken(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/broken")
        .join(file)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A suite of one refused connect, which passes at once.
fn quick_suite(dir: &Path) -> PathBuf {
    let path = dir.join("quick.toml");
    std::fs::write(
        &path,
        "[[case]]\nname = \"refused\"\nclient = [{ connect = 8080, expect = \"ECONNREFUSED\" }]\n",
    )
    .expect("write suite");
    path
}

#[test]
fn zero_jobs_or_rounds_are_refused() {
    for flag in ["-j", "--repeat"] {
        let out = hangup(&["run", "suites", flag, "0"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("expected at least 1, found 0"), "{stderr}");
    }
}

#[test]
fn a_run_that_selects_nothing_fails_unless_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let suite = suite.to_str().expect("utf-8 path");
    let out = hangup(&["run", suite, "--filter", "no_such_case"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no case selected (no case name contains \"no_such_case\")"),
        "{stderr}"
    );
    let out = hangup(&["run", suite, "--filter", "no_such_case", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn repeat_counts_every_round_and_the_json_keeps_them_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let json = dir.path().join("report.json");
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "--repeat",
        "3",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("running 1 case\n"), "{stdout}");
    assert!(stdout.contains("1 case over 3 of 3 rounds"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("3 passed, 0 failed"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid JSON");
    assert_eq!(report["rounds"].as_array().map(Vec::len), Some(3));
}

#[test]
fn a_failed_run_ends_with_the_list_of_failing_tests() {
    let artifacts = tempfile::tempdir().expect("temp dir");
    let out = hangup(&[
        "run",
        broken("errno.toml").to_str().expect("utf-8"),
        "--artifacts",
        artifacts.path().to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let tail: Vec<&str> = stdout.lines().rev().take(4).collect();
    assert_eq!(tail[0], "0 passed, 1 failed", "{stdout}");
    assert!(stdout.contains("failing tests:\n    errno::"), "{stdout}");
}

#[test]
fn junit_calls_an_expectation_a_failure_and_an_overrun_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, element, kind) in [
        ("errno.toml", "<failure", "hangup::expectation"),
        ("deadline.toml", "<error", "hangup::deadline"),
    ] {
        let junit = dir.path().join(format!("{file}.xml"));
        let out = hangup(&[
            "run",
            broken(file).to_str().expect("utf-8"),
            "--junit",
            junit.to_str().expect("utf-8"),
            "--artifacts",
            dir.path().to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        let xml = std::fs::read_to_string(&junit).expect("junit");
        assert!(xml.contains(element), "{file}: {xml}");
        assert!(xml.contains(kind), "{file}: {xml}");
    }
}

#[test]
fn a_report_into_a_missing_folder_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let json = dir.path().join("no/such/folder/report.json");
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!dir.path().join("no").exists());
}

/// Runs `hangup run <suite>` on a pseudo-terminal through util-linux's
/// `script`, as a person at a terminal sees it.
fn on_a_terminal(suite: &Path, no_color: Option<&str>) -> Option<String> {
    let command = format!(
        "{} run {}",
        env!("CARGO_BIN_EXE_hangup"),
        suite.to_str().expect("utf-8")
    );
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    script.env_remove("NO_COLOR");
    if let Some(value) = no_color {
        script.env("NO_COLOR", value);
    }
    match script.output() {
        Ok(out) => Some(text(&out.stdout)),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("script(1) not found: the terminal colour check is skipped");
            None
        }
        Err(err) => panic!("script(1) (bsdutils) is needed in CI: {err}"),
    }
}

#[test]
fn colour_on_a_terminal_only_and_never_with_no_color() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let piped = hangup(&["run", suite.to_str().expect("utf-8")]);
    assert!(
        !text(&piped.stdout).contains('\x1b'),
        "no colour into a pipe"
    );
    if let Some(shown) = on_a_terminal(&suite, None) {
        assert!(shown.contains("\x1b[32mok\x1b[0m"), "{shown:?}");
    }
    if let Some(shown) = on_a_terminal(&suite, Some("1")) {
        assert!(shown.contains("... ok ("), "{shown:?}");
        assert!(!shown.contains('\x1b'), "{shown:?}");
    }
}
