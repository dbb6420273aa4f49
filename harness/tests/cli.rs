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

/// `hangup diff` of one suite run against two "versions" of a program:
/// `stream`, then the leaking twin under its name (`HANGUP_FIXTURES` puts
/// another build of the fixtures first).
#[test]
fn diff_names_what_changed_between_two_versions_of_a_program_and_accepts_what_is_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = Path::new(env!("CARGO_BIN_EXE_hangup"));
    let leaky = exe.with_file_name("leaky");
    if !leaky.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the fixtures are built by cargo test --workspace"
        );
        eprintln!(
            "no fixtures beside {}: run `cargo test --workspace`",
            exe.display()
        );
        return;
    }
    let new_version = dir.path().join("new-version");
    std::fs::create_dir(&new_version).expect("mkdir");
    std::fs::copy(&leaky, new_version.join("stream")).expect("copy leaky as stream");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/suites/leak_soak.toml");
    let run = |json: &Path, fixtures: Option<&Path>| {
        let mut command = Command::new(exe);
        command
            .arg("run")
            .arg(&suite)
            .arg("--json")
            .arg(json)
            .arg("--artifacts")
            .arg(dir.path());
        if let Some(fixtures) = fixtures {
            command.env("HANGUP_FIXTURES", fixtures);
        }
        command.output().expect("run hangup")
    };
    let (base, new) = (dir.path().join("base.json"), dir.path().join("new.json"));
    assert_eq!(run(&base, None).status.code(), Some(0));
    assert_eq!(run(&new, Some(&new_version)).status.code(), Some(1));
    let paths = |extra: &[&str]| {
        let mut args = vec![
            "diff",
            base.to_str().expect("utf-8"),
            new.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        hangup(&args)
    };
    let out = paths(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let case = "leak_soak::twenty_clients_leave_no_close_wait";
    for line in [
        format!("{case}: verdict: passed -> failed (expectation)"),
        format!("{case}: client #1.4 recv: eof -> EAGAIN"),
        format!("{case}: server state (client step 1.6): TIME_WAIT -> CLOSE_WAIT"),
        // On the wire: the leaking twin no longer closes first (its FIN
        // comes only when it is stopped).
        format!("{case}: on the wire: first FIN: server -> client"),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{stdout}"
        );
    }
    // Accept every difference it printed: then it passes.
    let accept = dir.path().join("accepted.txt");
    let listed: String = stdout
        .lines()
        .filter(|l| l.starts_with(case))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&accept, format!("# known: leaky\n{listed}")).expect("write");
    let out = paths(&["--accept", accept.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("(accepted)"));
    // A run against itself differs in nothing.
    let same = hangup(&[
        "diff",
        base.to_str().expect("utf-8"),
        base.to_str().expect("utf-8"),
    ]);
    assert_eq!(same.status.code(), Some(0));
    assert!(text(&same.stdout).contains("0 differences in 0 cases of 1 case"));
    // With another run of the base: what leaky changed is no noise (the
    // base's runs agree there), and the count says what was set aside.
    let again = dir.path().join("base-again.json");
    assert_eq!(run(&again, None).status.code(), Some(0));
    let junit = dir.path().join("diff.xml");
    let page = dir.path().join("diff.html");
    let out = paths(&[
        "--base-again",
        again.to_str().expect("utf-8"),
        "--junit",
        junit.to_str().expect("utf-8"),
        "--html",
        page.to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = format!("{case}: client #1.4 recv: eof -> EAGAIN");
    assert!(stdout.lines().any(|l| l == line), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains(" accepted, ") && l.ends_with(" set aside as noise")),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("hangup::difference"), "{xml}");
    assert!(xml.contains(&line), "{xml}");
    // The page: the changed case, its differences in a table, both runs'
    // ladders side by side (tests/html.rs clicks through such a page).
    let html = std::fs::read_to_string(&page).expect("the diff page");
    assert_eq!(
        html.matches("<details class=\"case\"").count(),
        1,
        "one changed case"
    );
    assert!(
        html.contains(&format!("id=\"case-{case}\"")),
        "{html:.3000}"
    );
    assert!(html.contains("<td><code>eof</code></td><td><code>EAGAIN</code></td>"));
    // Each ladder is written as rows the page's script draws as SVG.
    assert_eq!(html.matches("<div class=\"ladder-box rows\">").count(), 2);
}

/// Starts `hangup run` on `suite` with JUnit and JSON reports in `dir`.
fn spawn_run(dir: &Path, suite: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(suite)
        .arg("--junit")
        .arg(dir.join("junit.xml"))
        .arg("--json")
        .arg(dir.join("report.json"))
        .arg("--artifacts")
        .arg(dir)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hangup")
}

/// Waits up to `limit` for `child` to exit; its output. A child still
/// running then is killed and the test fails.
fn exit_within(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let began = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("hangup still ran {limit:?} after the signal");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id().try_into().expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("kill");
}

/// A case-level program that says it is ready and then only waits: once
/// it runs, its log has made the case's artifact folder in `--artifacts`.
const WAITING_PROGRAM: &str = "program = { run = [\"sh\", \"-c\", \"echo ready; exec sleep 120\"], port = 8080, ready = \"^ready$\" }\n";

/// Waits (up to 10 s) until a case's artifact folder appears in `dir`:
/// the case has started.
fn wait_started(dir: &Path) {
    let began = std::time::Instant::now();
    while began.elapsed() < std::time::Duration::from_secs(10) {
        let started = std::fs::read_dir(dir)
            .expect("artifacts")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("hangup-"));
        if started {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no case started within 10 s");
}

#[test]
fn sigint_stops_the_run_and_still_writes_complete_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("long.toml");
    std::fs::write(
        &suite,
        format!("[[case]]\nname = \"sleeps\"\ndeadline = \"60s\"\n{WAITING_PROGRAM}client = [{{ connect = 8080, expect = \"ECONNREFUSED\" }}, {{ sleep = \"30s\" }}]\n\n\
         [[case]]\nname = \"quick_a\"\nclient = [{{ connect = 8080, expect = \"ECONNREFUSED\" }}]\n\n\
         [[case]]\nname = \"quick_b\"\nclient = [{{ connect = 8080, expect = \"ECONNREFUSED\" }}]\n"),
    )
    .expect("write suite");
    // One job: the sleeping case (longest expected) runs first, the others
    // wait for it.
    let child = spawn_run(dir.path(), &suite, &["-j", "1"]);
    wait_started(dir.path());
    signal(&child, nix::sys::signal::Signal::SIGINT);
    // Well before the 30 s the case would have slept.
    let out = exit_within(child, std::time::Duration::from_secs(10));
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit");
    assert_eq!(xml.matches("<testcase").count(), 3, "{xml}");
    assert_eq!(xml.matches("hangup::interrupted").count(), 1, "{xml}");
    assert_eq!(
        xml.matches("not run: the run was interrupted").count(),
        2,
        "{xml}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("json"))
            .expect("valid JSON");
    let cases = json["rounds"][0]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["kind"], "interrupted", "{json:#}");
}

#[test]
fn a_second_sigint_exits_at_once() {
    if Command::new("python3").arg("-V").output().is_err() {
        eprintln!("skipped: no python3 for the program that ignores SIGTERM");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("stubborn.toml");
    // A program that ignores SIGTERM with a long grace: stopping it after
    // the first SIGINT would take 30 s.
    std::fs::write(
        &suite,
        "[program]\nrun = [\"python3\", \"-c\", \"import signal, socket, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ns = socket.socket()\\ns.bind(('127.0.0.1', 8080))\\ns.listen()\\ntime.sleep(120)\"]\nport = 8080\ngrace = \"30s\"\nrequires = [\"python3\"]\n\n\
         [[case]]\nname = \"waits\"\ndeadline = \"60s\"\nclient = [{ connect = 8080 }, { sleep = \"30s\" }]\n",
    )
    .expect("write suite");
    let child = spawn_run(dir.path(), &suite, &[]);
    wait_started(dir.path());
    signal(&child, nix::sys::signal::Signal::SIGINT);
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, nix::sys::signal::Signal::SIGINT);
    // Well before the 30 s grace the first signal alone would wait out.
    let out = exit_within(child, std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
}

/// Runs hangup with stdout a pipe nobody reads: every write fails with EPIPE.
fn hangup_into_closed_pipe(args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(args)
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run hangup")
}

#[test]
fn a_closed_stdout_ends_commands_quietly_not_in_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let suite = suite.to_str().expect("utf-8 path");
    for (args, code) in [
        (&["schema"][..], 0),
        (&["check", suite][..], 0),
        (&["check", "no/such/suite.toml"][..], 2),
        // Every case's line and the summary fail to print; the case still
        // runs and passes.
        (&["run", suite][..], 0),
    ] {
        let out = hangup_into_closed_pipe(args);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("standard output"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    }
}

#[test]
fn a_closed_stderr_loses_the_messages_but_keeps_the_exit_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("bad.toml");
    std::fs::write(&suite, "[[case]]\nname = 1\n").expect("write suite");
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    // An invalid suite: check prints its report to stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(["check", suite.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(write))
        .output()
        .expect("run hangup");
    // 101 is a panic: eprintln! on a closed stderr.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
}

#[test]
fn a_soak_runs_every_round_despite_failures_and_ends_with_each_case_s_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = hangup(&[
        "run",
        broken("errno.toml").to_str().expect("utf-8"),
        quick_suite(dir.path()).to_str().expect("utf-8"),
        "--repeat",
        "3",
        "--soak",
        "--artifacts",
        dir.path().to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("2 cases over 3 of 3 rounds"), "{stdout}");
    assert!(stdout.contains("3 passed, 3 failed"), "{stdout}");
    assert!(
        stdout.contains("errno::wrong_errno: 3 runs, 3 failed; hangup's own lateness "),
        "{stdout}"
    );
    assert!(
        stdout.contains("quick::refused: 3 runs, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    client step 1 `connect 127.0.0.1:8080`: "),
        "{stdout}"
    );
    assert!(stdout.contains(" over 3 calls"), "{stdout}");
    // The failing test is listed once, not once per round.
    assert_eq!(
        stdout.matches("\n    errno::wrong_errno\n").count(),
        1,
        "{stdout}"
    );
    // Without --repeat, --soak is refused.
    let alone = hangup(&["run", "suites", "--soak"]);
    assert_eq!(alone.status.code(), Some(2));
}

/// `hangup run` under `prlimit --nofile=SOFT:HARD` (util-linux), or none
/// where there is no prlimit.
fn hangup_with_fd_limit(limit: &str, suite: &str) -> Option<Output> {
    Command::new("prlimit")
        .arg(format!("--nofile={limit}"))
        .arg(env!("CARGO_BIN_EXE_hangup"))
        .args(["run", suite, "-j", "4"])
        .output()
        .ok()
}

#[test]
fn too_few_file_descriptors_is_said_once_not_failed_in_every_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let suite = suite.to_str().expect("utf-8 path");
    let Some(out) = hangup_with_fd_limit("16:16", suite) else {
        eprintln!("skipped: no prlimit (util-linux)");
        return;
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("running 1 case at once needs about 96 file descriptors, and this process may open only 16 (RLIMIT_NOFILE)"),
        "{stderr}"
    );
    // A low soft limit under a higher hard one is raised as far as needed.
    let out = hangup_with_fd_limit("16:4096", suite).expect("prlimit");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// `scope = "suite"`: one program serves every case of the suite (the same
/// pid in each case's timeline), even with jobs to spare.
#[test]
fn a_suite_scoped_program_starts_once_for_all_its_cases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/suites/suite_program.toml");
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "-j",
        "4",
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid JSON");
    let cases = report["rounds"][0]["cases"].as_array().expect("cases");
    let served: Vec<String> = cases
        .iter()
        .map(|case| {
            let events = case["timeline"]["events"].as_array().expect("events");
            let serves = events
                .iter()
                .find(|e| e["event"] == "program_serves")
                .unwrap_or_else(|| panic!("no event of the program serving: {case}"));
            serves["pid"].to_string()
        })
        .collect();
    assert_eq!(served.len(), 3, "{served:?}");
    assert!(served.iter().all(|pid| *pid == served[0]), "{served:?}");
}

/// `compare`: every case runs against both versions of the program in one
/// run, which ends naming what changed between them and fails on a change
/// the accept file does not list.
#[test]
fn a_suite_compares_two_versions_of_its_program_in_one_run() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/versions/stream_or_leaky.toml");
    let suite = suite.to_str().expect("utf-8");
    let out = hangup(&["run", suite]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("case stream_or_leaky::client_reads_it_all@stream ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("case stream_or_leaky::client_reads_it_all@leaky ... ok"),
        "{stdout}"
    );
    let compared = stdout
        .split("\nversions compared:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no comparison: {stdout}"));
    let changed =
        "stream_or_leaky::client_reads_it_all (stream -> leaky): client #4 recv: eof -> EAGAIN";
    assert!(compared.contains(changed), "{stdout}");

    // Every difference accepted: the run passes, each one still shown.
    let dir = tempfile::tempdir().expect("temp dir");
    let accept = dir.path().join("accepted.txt");
    let lines: Vec<&str> = compared
        .lines()
        .take_while(|line| line.starts_with("stream_or_leaky::"))
        .collect();
    std::fs::write(&accept, lines.join("\n")).expect("write accept file");
    let out = hangup(&["run", suite, "--accept", accept.to_str().expect("utf-8")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{changed}  (accepted)")),
        "{stdout}"
    );
}

/// A version's suite, run with JSON and JUnit reports into a temporary
/// folder: its output, its JSON report, and its JUnit.
fn compare_run(suite: &str) -> (Output, serde_json::Value, String) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/versions")
        .join(suite);
    let dir = tempfile::tempdir().expect("temp dir");
    let (json, junit) = (dir.path().join("r.json"), dir.path().join("r.xml"));
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
        "--junit",
        junit.to_str().expect("utf-8"),
    ]);
    let report = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("JSON");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    (out, report, xml)
}

/// A version compared with itself (`compare` names `stream` twice) runs
/// three times, and no observation differs: not a duration, a loop's
/// rounds, what `released` found, a traced call, the wire, a line. The
/// JUnit has a passing testcase per pair, named by its versions.
#[test]
fn a_version_compared_with_itself_differs_in_nothing() {
    let (out, report, xml) = compare_run("stream_itself.toml");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for run in ["@stream ...", "@stream#2 ...", "@stream#3 ..."] {
        assert!(
            stdout.contains(&format!("stream_itself::client_reads_it_all{run} ok")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("\nversions compared:\n0 differences, 0 accepted, "),
        "{stdout}"
    );
    assert!(report.get("versions").is_none(), "{report:#}");
    let pair = "stream_itself::client_reads_it_all (stream -&gt; stream)";
    assert!(xml.contains(&format!("<testcase name=\"{pair}\"")), "{xml}");
    assert!(!xml.contains("hangup::difference"), "{xml}");
}

/// Two versions that differ only in what they print (`stream` and its
/// twin `noisy`, which logs a client that left as an ERROR with a stack
/// trace) are different, and the difference names each new line, though
/// no step mentions them: on the terminal, in the JSON report and in
/// JUnit.
#[test]
fn versions_that_differ_only_in_what_they_print_are_different_line_by_line() {
    let (out, report, xml) = compare_run("stream_or_noisy.toml");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("\n3 passed, 0 failed"), "{stdout}");
    let compared = stdout
        .split("\nversions compared:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no comparison: {stdout}"));
    let pair = "stream_or_noisy::client_times_out_mid_stream (stream -> noisy): ";
    let differences: Vec<&str> = compared
        .lines()
        .take_while(|l| l.starts_with(pair))
        .collect();
    // Only what it printed differs, and each new line is named, the
    // error first, then every frame of its trace.
    assert!(
        differences
            .iter()
            .all(|l| l.starts_with(&format!("{pair}server printed "))),
        "{stdout}"
    );
    let new = |line: &&str| line.ends_with(": (not seen) -> printed");
    let error = differences
        .iter()
        .position(|l| new(l) && l.contains("printed \"ERROR write failed: E"))
        .unwrap_or_else(|| panic!("no ERROR line: {stdout}"));
    let frames = differences
        .iter()
        .filter(|l| new(l) && l.contains("printed \"\\tat fixtures.noisy."))
        .count();
    assert_eq!(frames, 9, "{stdout}");
    assert!(
        differences[error..]
            .iter()
            .filter(|l| l.contains("\\tat "))
            .count()
            == 10,
        "the trace follows its error: {stdout}"
    );
    // The JSON report: each line typed, its side and what it printed.
    let versions = report["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), differences.len(), "{report:#}");
    assert!(
        versions
            .iter()
            .any(|d| d["change"]["observation"]["of"]["kind"] == "printed"
                && d["change"]["observation"]["of"]["line"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("ERROR write failed: "))
                && d["change"]["new"] == "printed"),
        "{report:#}"
    );
    // JUnit: the pair failed, listing them.
    assert!(
        xml.contains(&format!(
            "<failure type=\"hangup::difference\" message=\"{} changed\">",
            differences.len()
        )),
        "{xml}"
    );
    assert!(xml.contains("ERROR write failed: "), "{xml}");
}

/// A case's packets, written as its `capture.pcap`: tshark (Wireshark's
/// reader) opens it and shows the same TCP segments, with the same flags
/// in the same order, as hangup's report. Skipped without tshark, except
/// in CI, which installs it.
#[test]
fn a_case_capture_opens_in_tshark_with_the_flags_the_report_shows() {
    let tshark = Command::new("tshark").arg("--version").output();
    if tshark.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tshark (Debian's tshark) is needed in CI"
        );
        eprintln!("tshark not found: the pcap check is skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let suite =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/s02_read_timeout_mid_stream.toml");
    let json = dir.path().join("report.json");
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "--keep-artifacts",
        "--artifacts",
        dir.path().to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
    let case = &report["rounds"][0]["cases"][0];
    let flags_bits = |text: &str| -> u8 {
        text.split('|')
            .map(|name| match name {
                "FIN" => 0x01,
                "SYN" => 0x02,
                "RST" => 0x04,
                "PSH" => 0x08,
                "ACK" => 0x10,
                other => panic!("flag {other}"),
            })
            .fold(0, |all, bit| all | bit)
    };
    let reported: Vec<u8> = case["timeline"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "packet")
        .map(|e| flags_bits(e["flags"].as_str().expect("flags")))
        .collect();
    assert!(reported.len() >= 8, "{reported:?}");
    let pcap = Path::new(case["artifacts"].as_str().expect("kept artifacts")).join("capture.pcap");
    let read = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().expect("utf-8"),
            "-T",
            "fields",
            "-e",
            "tcp.flags",
        ])
        .output()
        .expect("run tshark");
    assert!(read.status.success(), "{}", text(&read.stderr));
    let shown: Vec<u8> = text(&read.stdout)
        .lines()
        .map(|line| {
            let hex = line.trim().trim_start_matches("0x");
            (u16::from_str_radix(hex, 16).expect("tshark's hex flags") & 0x1f) as u8
        })
        .collect();
    assert_eq!(shown, reported, "tshark's flags against the report's");
}

/// `--no-capture` leaves a case's packets out of its timeline, except in a
/// case that checks them, which is captured all the same.
#[test]
fn no_capture_captures_only_the_cases_that_check_packets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("capture.toml");
    std::fs::write(
        &suite,
        r#"[[case]]
name = "unchecked"
client = [{ connect = 8080, expect = "ECONNREFUSED" }]

[[case]]
name = "checked"
client = [
  { connect = 8080, expect = "ECONNREFUSED" },
  { sent = "client", flags = "SYN", count = 1 },
]
"#,
    )
    .expect("write suite");
    let packets = |extra: &[&str]| -> Vec<(String, usize)> {
        let json = dir.path().join("report.json");
        let mut args = vec![
            "run",
            suite.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        let out = hangup(&args);
        assert!(out.status.success(), "{}", text(&out.stdout));
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
        let mut seen: Vec<(String, usize)> = report["rounds"][0]["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|case| {
                let n = case["timeline"]["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .filter(|e| e["event"] == "packet")
                    .count();
                (case["case"].as_str().expect("name").to_string(), n)
            })
            .collect();
        seen.sort();
        seen
    };
    // A refused connect: the SYN and the RST that answers it.
    assert_eq!(
        packets(&[]),
        [("checked".to_string(), 2), ("unchecked".to_string(), 2)]
    );
    assert_eq!(
        packets(&["--no-capture"]),
        [("checked".to_string(), 2), ("unchecked".to_string(), 0)]
    );
}

/// A program whose acceptor thread blocks in accept (as Tomcat's does):
/// each traced accept is on the timeline after the connect it answered,
/// and names the fd its connection's reads use. Stamped where it began,
/// each showed before the connect, beside the connection before it, naming
/// another fd than that connection's ("accept() = fd 44 while I/O is on fd
/// 40").
#[test]
fn a_blocking_accept_is_beside_the_connection_it_returned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let suite =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/suites/blocking_accept.toml");
    let out = hangup(&[
        "run",
        suite.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("JSON");
    let events = report["rounds"][0]["cases"][0]["timeline"]["events"]
        .as_array()
        .expect("events");
    let connects: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "call" && e["call"]["action"] == "connect")
        .filter_map(|e| e["at_ms"].as_f64())
        .collect();
    let accepts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "traced" && e["call"]["accepted"].is_i64())
        .collect();
    assert_eq!((connects.len(), accepts.len()), (2, 2), "{stdout}");
    for (k, (connect, accept)) in connects.iter().zip(&accepts).enumerate() {
        let at = accept["at_ms"].as_f64().expect("at_ms");
        assert!(
            at >= *connect,
            "accept {k} at {at} before its connect at {connect}"
        );
        let next_connect = connects.get(k + 1).copied().unwrap_or(f64::MAX);
        assert!(
            at < next_connect,
            "accept {k} at {at} after the next connect"
        );
        // The first read after it is on the fd it returned.
        let read = events
            .iter()
            .filter(|e| e["at_ms"].as_f64().is_some_and(|t| t >= at))
            .find(|e| e["event"] == "traced" && e["call"]["syscall"] == "recvfrom")
            .unwrap_or_else(|| panic!("no read after accept {k}"));
        assert_eq!(
            read["call"]["fd"], accept["call"]["accepted"],
            "{accept} {read}"
        );
    }
}

/// On a terminal a status line counts the run (done of all, running,
/// failed so far) under the case lines, and goes before the summary;
/// never into a pipe, nor with `NO_COLOR` or `TERM=dumb`. The terminal is
/// a pseudo-terminal from util-linux's `script`.
#[test]
fn a_status_line_counts_the_run_on_a_terminal_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = quick_suite(dir.path());
    let command = format!("{} run {}", env!("CARGO_BIN_EXE_hangup"), suite.display());
    let on_terminal = |env: &[(&str, &str)]| -> Option<String> {
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .envs(env.iter().copied())
            .output()
            .ok()?;
        Some(text(&out.stdout))
    };
    let Some(shown) = on_terminal(&[]) else {
        assert!(std::env::var_os("CI").is_none(), "CI must have `script`");
        eprintln!("no `script` here: the terminal half of this test did not run");
        return;
    };
    assert!(shown.contains("[1/1] 0 running, 0 failed"), "{shown:?}");
    // Cleared (carriage return, erase line) before the summary.
    assert!(
        shown.contains("\r\x1b[K\r\n1 passed, 0 failed"),
        "{shown:?}"
    );
    for env in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        let shown = on_terminal(&env).expect("script ran before");
        assert!(!shown.contains("running,"), "{env:?}: {shown:?}");
    }
    let piped = hangup(&["run", suite.to_str().expect("utf-8 path")]);
    assert!(!text(&piped.stdout).contains("running,"));
}

/// A case whose program needs a command this machine lacks is skipped and
/// named at the end with what to install, so "0 failed" cannot hide it;
/// `--require` (as `CI` and `HANGUP_REQUIRE=1`) runs it, and it fails.
#[test]
fn a_case_missing_its_requirement_is_named_or_with_require_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join("needs.toml");
    std::fs::write(
        &suite,
        "[program]\nrun = [\"hangup-no-such-command\"]\nport = 8080\n\
         requires = [\"hangup-no-such-command\"]\ninstall = \"apt-get install nothing\"\n\n\
         [[case]]\nname = \"c\"\nclient = [{ connect = 8080 }]\n",
    )
    .expect("write suite");
    let run = |extra: &[&str], require_env: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hangup"));
        cmd.arg("run").args(extra).arg(&suite);
        cmd.arg("--artifacts").arg(dir.path());
        cmd.env_remove("CI").env_remove("HANGUP_REQUIRE");
        if require_env {
            cmd.env("HANGUP_REQUIRE", "1");
        }
        cmd.output().expect("run hangup")
    };
    let out = run(&[], false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "skipped (not run, so not tested):\n  needs::c: needs `hangup-no-such-command`, which is not installed here; install it with `apt-get install nothing`"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("0 passed, 0 failed, 1 skipped\n"),
        "{stdout}"
    );
    for out in [run(&["--require"], false), run(&[], true)] {
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
        assert!(!stdout.contains("skipped"), "{stdout}");
    }
}

/// `{bin:NAME}` under an installed `hangup run` (a copy of the binary
/// beside no build, as `cargo install` leaves it): found in the target
/// folder of the package the suite belongs to, or in `HANGUP_BIN_DIR`.
#[test]
fn bin_names_the_package_build_for_an_installed_hangup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let installed = dir.path().join("installed");
    std::fs::create_dir(&installed).expect("mkdir");
    let hangup = installed.join("hangup");
    std::fs::copy(env!("CARGO_BIN_EXE_hangup"), &hangup).expect("install a copy");
    // A downstream package: its Cargo.toml, its build, its suite.
    let package = dir.path().join("package");
    let debug = package.join("target/debug");
    std::fs::create_dir_all(&debug).expect("mkdir");
    std::fs::create_dir_all(package.join("suites")).expect("mkdir");
    std::fs::write(package.join("Cargo.toml"), "[package]\nname = \"p\"\n").expect("write");
    let built = Path::new(env!("CARGO_BIN_EXE_hangup"))
        .parent()
        .expect("target/debug")
        .join("stream");
    std::fs::copy(&built, debug.join("myserver")).expect("copy the stream fixture as myserver");
    let suite = package.join("suites/mine.toml");
    std::fs::write(
        &suite,
        "[program]\nrun = [\"{bin:myserver}\", \"--port\", \"{port}\"]\nport = 8080\n\n\
         [[case]]\nname = \"c\"\nclient = [{ connect = 8080 }, \"close\"]\n",
    )
    .expect("write suite");
    let run = |bin_dir: Option<&Path>| {
        let mut cmd = Command::new(&hangup);
        cmd.arg("run").arg(&suite).current_dir(dir.path());
        cmd.arg("--artifacts").arg(dir.path());
        cmd.env_remove("HANGUP_FIXTURES")
            .env_remove("HANGUP_BIN_DIR")
            .env_remove("CARGO_TARGET_DIR");
        if let Some(d) = bin_dir {
            cmd.env("HANGUP_BIN_DIR", d);
        }
        cmd.output().expect("run the installed hangup")
    };
    let out = run(None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // Elsewhere, named by HANGUP_BIN_DIR (the package's build gone).
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&debug, &elsewhere).expect("move the build");
    let out = run(None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("no binary `myserver` in"),
        "{}",
        text(&out.stdout)
    );
    let out = run(Some(&elsewhere));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

/// `--junit-brief` leaves a passing case's timeline out of the JUnit XML,
/// and keeps a failing case's failure and timeline.
#[test]
fn junit_brief_leaves_passing_timelines_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passing = quick_suite(dir.path());
    let junit = |brief: bool| {
        let xml = dir
            .path()
            .join(if brief { "brief.xml" } else { "full.xml" });
        let mut args = vec!["run".to_string(), passing.display().to_string()];
        args.push(broken("errno.toml").display().to_string());
        args.extend(["--junit".to_string(), xml.display().to_string()]);
        args.extend(["--artifacts".to_string(), dir.path().display().to_string()]);
        if brief {
            args.push("--junit-brief".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hangup(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        std::fs::read_to_string(&xml).expect("JUnit written")
    };
    let full = junit(false);
    let brief = junit(true);
    // The passing case, up to the next element of its suite.
    let passing_case = |xml: &str| {
        let at = xml.find("name=\"refused\"").expect("the passing case");
        let end = xml[at..].find("</testsuite>").map_or(xml.len(), |e| at + e);
        xml[at..end].to_string()
    };
    assert!(passing_case(&full).contains("<system-out>"), "{full}");
    assert!(!passing_case(&brief).contains("<system-out>"), "{brief}");
    // The failing case: the same in both.
    for (xml, outs) in [(&full, 2), (&brief, 1)] {
        assert!(xml.contains("expected EPIPE (Broken pipe)"), "{xml}");
        assert_eq!(xml.matches("<system-out>").count(), outs, "{xml}");
    }
}
