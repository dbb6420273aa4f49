//! Programs that print without bound leave hangup's memory, its reports
//! and its verdicts bounded: a flood of 1 KiB lines, one 100 MB line, and
//! a line that never ends, side by side in one run of the real binary.
//!
//! CI runs each for a few seconds; the issue's figures (15 s of flood, 70 s
//! of endless line) are `HANGUP_HOSTILE_SECS=70 cargo test -p hangup --test
//! bounded -- --nocapture`.

use std::path::Path;
use std::process::Command;

/// How long the flood and the endless line go on.
fn seconds() -> u64 {
    std::env::var("HANGUP_HOSTILE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// The suite: each case's program prints `ready`, then misbehaves; each
/// case's `log` checks still count right.
fn suite(secs: u64) -> String {
    format!(
        r#"
[[case]]
name = "flood"
program = {{ run = ["sh", "-c", "echo ready; exec yes \"$(head -c 1024 /dev/zero | tr '\\0' x)\""], ready = "^ready$", port = 9000 }}
deadline = "{deadline}s"
client = [
  {{ sleep = "{secs}s" }},
  {{ log = "^ready$", count = 1 }},
]

[[case]]
name = "one_100_mb_line"
program = {{ run = ["sh", "-c", "echo ready; head -c 104857600 /dev/zero | tr '\\0' x; echo; echo after; exec sleep 600"], ready = "^ready$", port = 9000 }}
deadline = "{deadline}s"
client = [
  {{ log = "^after$", within = "{deadline}s" }},
  {{ log = "^x+$", count = 1 }},
]

[[case]]
name = "endless_line"
program = {{ run = ["sh", "-c", "echo ready; exec tr '\\0' x < /dev/zero"], ready = "^ready$", port = 9000 }}
deadline = "{deadline}s"
client = [
  {{ sleep = "{secs}s" }},
  {{ log = "^ready$", count = 1 }},
]
"#,
        deadline = secs * 2 + 30
    )
}

/// The largest resident set of any child this test process has reaped, in
/// bytes: the hangup binary's, unless a program it ran grew larger.
fn children_peak() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    // Linux counts it in KiB.
    u64::try_from(usage.max_rss()).unwrap_or(0) * 1024
}

#[test]
fn hostile_output_leaves_hangup_and_its_reports_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hostile.toml");
    std::fs::write(&file, suite(seconds())).expect("write suite");
    let (json, junit) = (dir.path().join("r.json"), dir.path().join("r.xml"));
    let artifacts = dir.path().join("artifacts");
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(&file)
        .args(["-j", "3", "--keep-artifacts", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--artifacts")
        .arg(&artifacts)
        .output()
        .expect("run hangup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("3 passed"), "{stdout}");

    let peak = children_peak();
    eprintln!("peak resident set of hangup: {} MiB", peak >> 20);
    assert!(peak < 512 << 20, "hangup grew to {} MiB", peak >> 20);
    for report in [&json, &junit] {
        let size = std::fs::metadata(report).expect("report").len();
        eprintln!("{}: {} KiB", report.display(), size >> 10);
        assert!(size < 10 << 20, "{} is {size} bytes", report.display());
    }
    // Plain xmllint, without --huge, as CI tools read JUnit.
    match Command::new("xmllint").arg("--noout").arg(&junit).output() {
        Ok(lint) => assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stderr)
        ),
        Err(_) => eprintln!("xmllint not found: the JUnit file is not linted"),
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid JSON");
    let cases = report["rounds"][0]["cases"].as_array().expect("cases");
    let events = |name: &str| {
        let case = cases
            .iter()
            .find(|c| c["name"].as_str().is_some_and(|n| n.ends_with(name)))
            .unwrap_or_else(|| panic!("no case {name}"));
        case["timeline"]["events"]
            .as_array()
            .expect("events")
            .clone()
    };
    // The 100 MB line: its first 64 KiB, and the rest counted.
    let cut: Vec<u64> = events("one_100_mb_line")
        .iter()
        .filter_map(|e| e["cut"].as_u64())
        .collect();
    let cap = hangup::sut::LINE_CAP as u64;
    assert_eq!(cut, [(100 << 20) - cap], "cut lines");
    // The flood and the endless line: the first lines kept, the rest counted.
    let flood = events("flood");
    assert!(
        flood
            .iter()
            .any(|e| e["event"] == "left_out" && e["of"] == "output"),
        "no lines left out of the flood"
    );
    let endless = events("endless_line");
    assert!(
        endless
            .iter()
            .any(|e| e["cut"].as_u64().is_some_and(|c| c > 0)),
        "the endless line is not marked as cut"
    );

    // program.log stops at its cap and says so.
    let logs: Vec<_> = walk(&artifacts)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "program.log"))
        .collect();
    assert_eq!(logs.len(), 3, "{logs:?}");
    for log in &logs {
        let size = std::fs::metadata(log).expect("log").len();
        assert!(
            size <= hangup::sut::PROGRAM_LOG_CAP + 4096,
            "{}: {size}",
            log.display()
        );
    }
    let flooded = logs
        .iter()
        .find(|p| p.to_string_lossy().contains("flood"))
        .expect("the flood's log");
    let text = std::fs::read(flooded).expect("read");
    let last = text.rsplit(|&b| b == b'\n').nth(1).unwrap_or_default();
    let stopped = last.starts_with(b"# program.log stops here");
    // How much the flood printed, as its record counts it (kept lines and
    // those left out): how far it got in its seconds depends on the
    // machine, so the log must have stopped if and only if that passed
    // the cap (each line takes its stamp, ~12 bytes, beside it).
    let (lines, bytes) = flood.iter().fold((0u64, 0u64), |(n, b), e| {
        let line = e["line"].as_str().map_or(0, |l| l.len() as u64);
        let cut = e["cut"].as_u64().unwrap_or(0);
        match e["event"].as_str() {
            Some("output") => (n + 1, b + line + cut),
            Some("left_out") => (
                n + e["events"].as_u64().unwrap_or(0),
                b + e["bytes"].as_u64().unwrap_or(0),
            ),
            _ => (n, b),
        }
    });
    let cap = hangup::sut::PROGRAM_LOG_CAP;
    eprintln!("the flood printed {lines} lines, {} MiB", bytes >> 20);
    if bytes > cap {
        assert!(stopped, "{}", String::from_utf8_lossy(last));
    } else if bytes + lines * 20 < cap {
        assert!(!stopped, "stopped short of the cap");
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
