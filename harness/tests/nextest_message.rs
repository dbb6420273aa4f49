//! Under cargo-nextest, a failing case's JUnit `<failure message=...>` says
//! what failed: the step, expected and observed (issue 20, "CI test views
//! that show why").
//!
//! nextest takes that message from the first line it recognises on the
//! test's stderr: a panic's `thread '...' panicked at`, else the first line
//! starting `Error: ` (nextest-runner's `reporter/error_description.rs`,
//! `heuristic_error_str`, regex `^Error: `, multi-line). This test runs this
//! very binary as `hangup::runner::test_main` on a broken suite, as nextest
//! runs one case (`NEXTEST=1`, `--exact`), and reads its stderr as nextest
//! would; and without `NEXTEST`, as `cargo test` runs it, that nothing more
//! is written.

use std::path::Path;
use std::process::{Command, ExitCode};

use libtest_mimic::{Arguments, Failed, Trial};

/// Set on the re-executed runner: it runs the suites instead of the test.
const RUNNER: &str = "HANGUP_NEXTEST_MESSAGE_RUNNER";

/// The broken case: expects EPIPE where Linux reports ECONNRESET.
const CASE: &str = "errno::wrong_errno";

fn main() -> ExitCode {
    if std::env::var_os(RUNNER).is_some() {
        return hangup::runner::test_main("tests/broken/errno.toml");
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test(
            "a_failing_case_gives_nextest_a_line_with_expected_and_observed",
            under_nextest,
        ),
        Trial::test(
            "under_cargo_test_the_failure_is_not_written_twice",
            under_cargo_test,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

/// Runs [`CASE`] alone in a child of this binary; `NEXTEST=1` when
/// `nextest`. Returns its exit code and stderr.
fn run_case(nextest: bool) -> Result<(Option<i32>, String), Failed> {
    let exe = std::env::current_exe().map_err(|e| format!("this test binary: {e}"))?;
    // The failing case keeps its artifact folder: in a folder of ours.
    let artifacts = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([CASE, "--exact"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env(RUNNER, "1")
        .env("HANGUP_ARTIFACTS", artifacts.path())
        .env_remove("HANGUP_SUITES")
        .env_remove("NEXTEST");
    if nextest {
        cmd.env("NEXTEST", "1");
    }
    let out = cmd.output().map_err(|e| format!("run the runner: {e}"))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn under_nextest() -> Result<(), Failed> {
    let (code, stderr) = run_case(true)?;
    if code != Some(101) {
        return Err(format!(
            "the broken case must fail (exit 101), got {code:?}; stderr:\n{stderr}"
        )
        .into());
    }
    // nextest's rule: the first line starting `Error: ` is the message.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .ok_or_else(|| format!("no `Error: ` line on stderr:\n{stderr}"))?;
    let want = format!(
        "Error: {CASE}: server step 4 at tests/broken/errno.toml:9:3: expected EPIPE (Broken pipe), observed ECONNRESET (Connection reset by peer)"
    );
    // What follows is the kernel's detail (bytes, time), which varies.
    if !line.starts_with(&want) {
        return Err(format!("the line nextest reads:\n  {line}\nwanted:\n  {want}").into());
    }
    Ok(())
}

fn under_cargo_test() -> Result<(), Failed> {
    let (code, stderr) = run_case(false)?;
    if code != Some(101) {
        return Err(format!(
            "the broken case must fail (exit 101), got {code:?}; stderr:\n{stderr}"
        )
        .into());
    }
    if stderr.lines().any(|l| l.starts_with("Error: ")) {
        return Err(format!("an `Error: ` line without nextest:\n{stderr}").into());
    }
    Ok(())
}
