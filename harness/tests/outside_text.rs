//! Text from outside reaches the terminal escaped: a suite file's name, a
//! case's name, a program's output and the strings of a report handed to
//! `hangup diff` may hold newlines, ESC and BEL, and none of them reaches
//! the terminal raw or prints a summary line of its own. A file name that
//! leaves no suite name is refused, naming the file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A line that would pass for hangup's own summary, then a window title
/// (ESC ] ... BEL), a clear screen, a carriage return, a C1 CSI and a
/// bidi override.
const FORGERY: &str = "\n61 passed, 0 failed\n\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}1m\u{202e}";

/// The same, as the terminal shows it.
const SHOWN: &str = r"\n61 passed, 0 failed\n\u{1b}]0;owned\u{7}\u{1b}[2J\r\u{9b}1m\u{202e}";

fn hangup<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(args)
        .output()
        .expect("run hangup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a terminal obeys rather than shows: the controls but newline and
/// tab (C0, DEL, C1), the bidi controls and the line separators. Written
/// out here, not taken from hangup, so a gap there is caught.
fn obeyed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Both streams hold no character a terminal obeys, and the only lines
/// that read like a summary (`N passed, M failed`, `N differences`) are
/// hangup's own: as many as `summaries`, the last of them stdout's last
/// line.
fn assert_shown_safely(out: &Output, summaries: usize) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for (stream, what) in [(&stdout, "stdout"), (&stderr, "stderr")] {
        assert!(
            !stream.chars().any(obeyed),
            "{what} holds a control: {stream:?}"
        );
    }
    let summary = regex::Regex::new(r"^\d+ (passed, \d+ failed|differences)").expect("regex");
    let lines: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| summary.is_match(line))
        .collect();
    assert_eq!(lines.len(), summaries, "{lines:?}\n{stdout}\n{stderr}");
    if summaries > 0 {
        assert_eq!(stdout.lines().last(), lines.last().copied(), "{stdout}");
    }
}

/// One case that passes (a refused connect) and one that fails.
const TWO_CASES: &str = "[[case]]\nname = \"refused\"\nclient = [{ connect = 8080, expect = \"ECONNREFUSED\" }]\n\n\
[[case]]\nname = \"fails\"\nclient = [{ connect = 8080 }]\n";

/// A suite file named with a newline, a forged summary line, ESC and BEL:
/// `run` (of the file, and of its folder) and `check` show its name
/// escaped, and the one summary line is hangup's.
#[test]
fn a_suite_file_s_name_cannot_forge_a_line_or_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let suites = dir.path().join("suites");
    std::fs::create_dir(&suites).expect("mkdir");
    let file = suites.join(format!("s{FORGERY}.toml"));
    std::fs::write(&file, TWO_CASES).expect("write suite");
    let artifacts = dir.path().join("artifacts");
    for given in [&file, &suites] {
        let out = hangup(&[
            "run".as_ref(),
            given.as_os_str(),
            "--artifacts".as_ref(),
            artifacts.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_shown_safely(&out, 1);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains(&format!("case s{SHOWN}::refused ... ok")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("    s{SHOWN}::fails\n")),
            "{stdout}"
        );
        assert_eq!(stdout.lines().last(), Some("1 passed, 1 failed"));
    }
    // The same name in an error: the path of an invalid suite.
    std::fs::write(&file, "[[case]]\nname = 5\n").expect("write suite");
    let out = hangup(&["check".as_ref(), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert_shown_safely(&out, 0);
    assert!(
        text(&out.stderr).contains(&format!("s{SHOWN}.toml:2:8")),
        "{}",
        text(&out.stderr)
    );
}

/// A case name is refused unless it is letters, digits, `_` and `-`; the
/// refusal quotes it escaped, in `check` and in `run`.
#[test]
fn a_case_name_with_controls_is_refused_and_quoted_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("names.toml");
    // TOML's own escapes put the controls in the name.
    let toml_escaped = FORGERY
        .replace('\n', r"\n")
        .replace('\r', r"\r")
        .replace('\u{1b}', r"\u001b")
        .replace('\u{7}', r"\u0007")
        .replace('\u{9b}', r"\u009b")
        .replace('\u{202e}', r"\u202e");
    std::fs::write(
        &file,
        format!("[[case]]\nname = \"c{toml_escaped}\"\nclient = [\"close\"]\n"),
    )
    .expect("write suite");
    for command in ["check", "run"] {
        let out = hangup(&[command.as_ref(), file.as_os_str()]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert_shown_safely(&out, 0);
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "expected a case name of letters, digits, `_` and `-`, found `c{SHOWN}`"
            )),
            "{command}: {stderr}"
        );
    }
}

/// What a program prints is shown escaped in the timeline and in the
/// failure's last output, where ESC, BEL and a carriage return could
/// otherwise retitle or clear the terminal and write over a line.
#[test]
fn a_program_s_output_is_shown_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("noisy.toml");
    // printf's own escapes: the program prints the controls, then exits
    // while the case runs (not at once: a program gone before hangup has
    // seen it start is a failure to start, with no output).
    std::fs::write(
        &file,
        r#"[program]
run = ["sh", "-c", 'printf "ready\n\033]0;owned\007\033[2J\r61 passed, 0 failed\n"; sleep 0.5; exit 3']
port = 9000
ready = "^ready$"

[[case]]
name = "exits"
client = [{ sleep = "2s" }]
"#,
    )
    .expect("write suite");
    let out = hangup(&[
        "run".as_ref(),
        file.as_os_str(),
        "--artifacts".as_ref(),
        dir.path().as_os_str(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_shown_safely(&out, 1);
    let shown = r"out| \u{1b}]0;owned\u{7}\u{1b}[2J\r61 passed, 0 failed";
    assert!(
        stdout.contains("the program's last output:") && stdout.contains(&format!("  {shown}\n")),
        "{stdout}"
    );
    // And in the timeline: a line of its own, stamped.
    assert!(
        stdout.lines().any(|line| {
            line.trim_start()
                .split_once(' ')
                .is_some_and(|(ms, rest)| ms.parse::<f64>().is_ok() && rest.trim_start() == shown)
        }),
        "{stdout}"
    );
}

/// Runs a suite of one passing case with `--json` into `dir`, and returns
/// the report.
fn one_report(dir: &Path) -> serde_json::Value {
    let suite = dir.join("quick.toml");
    std::fs::write(&suite, TWO_CASES.split("\n\n").next().expect("first case")).expect("write");
    let json = dir.join("report.json");
    let out = hangup(&[
        "run".as_ref(),
        suite.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    serde_json::from_slice(&std::fs::read(&json).expect("read report")).expect("json")
}

/// `hangup diff` of two reports whose case names hold a forged "0
/// differences" line, ESC and BEL: each difference is one line, escaped,
/// the count is hangup's own, and an accept file lists a difference as it
/// is shown.
#[test]
fn a_report_s_strings_cannot_forge_a_diff_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut report = one_report(dir.path());
    let forged = format!("quick::refused\n0 differences in 0 cases of 1 case, 0 accepted{FORGERY}");
    report["rounds"][0]["cases"][0]["name"] = forged.clone().into();
    let write = |name: &str, report: &serde_json::Value| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(report).expect("json")).expect("write");
        path
    };
    let base = write("base.json", &report);
    // The new run: the case ignored, and one more case only it has.
    let mut new = report.clone();
    new["rounds"][0]["cases"][0]["status"] = "ignored".into();
    new["rounds"][0]["cases"][0]["reason"] = format!("why{FORGERY}").into();
    let mut other = new["rounds"][0]["cases"][0].clone();
    other["name"] = format!("other{FORGERY}").into();
    new["rounds"][0]["cases"]
        .as_array_mut()
        .expect("cases")
        .push(other);
    let new = write("new.json", &new);
    let out = hangup(&["diff".as_ref(), base.as_os_str(), new.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_shown_safely(&out, 1);
    let stdout = text(&out.stdout);
    let name = format!(r"quick::refused\n0 differences in 0 cases of 1 case, 0 accepted{SHOWN}");
    let listed = [
        format!("{name}: verdict: passed -> ignored"),
        format!("other{SHOWN}: only in new"),
    ];
    for line in &listed {
        assert!(
            stdout.lines().any(|l| l == line),
            "{line:?} missing:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().last(),
        Some("2 differences in 2 cases of 2 cases, 0 accepted")
    );
    // Accepted as they are shown.
    let accept = dir.path().join("accepted.txt");
    std::fs::write(&accept, listed.join("\n")).expect("write");
    let out = hangup(&[
        "diff".as_ref(),
        base.as_os_str(),
        new.as_os_str(),
        "--accept".as_ref(),
        accept.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_shown_safely(&out, 1);
    // A string the report's format does not know is quoted escaped in the
    // refusal.
    let mut unknown = report.clone();
    unknown["rounds"][0]["cases"][0]["status"] = format!("odd{FORGERY}").into();
    let unknown = write("unknown.json", &unknown);
    let out = hangup(&["diff".as_ref(), base.as_os_str(), unknown.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert_shown_safely(&out, 0);
    assert!(
        text(&out.stderr).contains(&format!("unknown variant `odd{SHOWN}`")),
        "{}",
        text(&out.stderr)
    );
}

/// `...toml`, `.toml`: a file name with nothing before `.toml` names no
/// suite (its tests would be `::case`). `check` and `run` refuse it as they
/// refuse any bad suite, naming the file.
#[test]
fn a_file_name_that_leaves_no_suite_name_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let case = TWO_CASES.split("\n\n").next().expect("first case");
    for file in ["...toml", ".toml"] {
        let path = dir.path().join(file);
        std::fs::write(&path, case).expect("write");
        for command in ["check", "run"] {
            let out = hangup(&[command.as_ref(), path.as_os_str()]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {file}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "failed to read suite {}: expected a file name with a name before `.toml`, found `{file}`",
                    path.display()
                )),
                "{command} {file}: {stderr}"
            );
        }
    }
    // Found in a folder, among valid suites: refused, and the rest is
    // still checked.
    std::fs::write(dir.path().join("fine.toml"), case).expect("write");
    let out = hangup(&["check".as_ref(), dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("1 suite(s) valid with 1 case(s), 1 invalid"),
        "{}",
        text(&out.stdout)
    );
}
