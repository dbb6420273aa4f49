//! A run killed with SIGKILL cannot remove its running cases' artifact
//! folders; the next run in the same artifact root does, and leaves the
//! folder as it found it, while a run still alive keeps its own (see
//! `record::leftovers`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A case whose program makes its artifact folder (`program.log`) at once;
/// the client waits `sleep` before it checks the program's first line.
fn suite(sleep: &str) -> String {
    format!(
        r#"
[[case]]
name = "waits"
program = {{ run = ["sh", "-c", "echo ready; exec sleep 600"], ready = "^ready$", port = 9000 }}
client = [
  {{ sleep = "{sleep}" }},
  {{ log = "^ready$", count = 1 }},
]
"#
    )
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn run_quick(file: &Path, root: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(file)
        .arg("--artifacts")
        .arg(root)
        .output()
        .expect("run hangup");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_run_after_a_killed_one_leaves_the_artifact_folder_as_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (slow, quick) = (dir.path().join("slow.toml"), dir.path().join("quick.toml"));
    std::fs::write(&slow, suite("60s")).expect("write");
    std::fs::write(&quick, suite("0s")).expect("write");
    let root = dir.path().join("artifacts");
    std::fs::create_dir(&root).expect("mkdir");

    let mut killed = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(&slow)
        .arg("--artifacts")
        .arg(&root)
        .stdout(Stdio::null())
        .spawn()
        .expect("start hangup");
    let until = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let folders: Vec<_> = listing(&root)
            .into_iter()
            .filter(|n| n.starts_with("hangup-slow-waits-"))
            .collect();
        if let [folder] = folders.as_slice() {
            break folder.clone();
        }
        assert!(Instant::now() < until, "no folder: {:?}", listing(&root));
        std::thread::sleep(Duration::from_millis(20));
    };

    // A run beside it leaves a live run's folder alone, and nothing of its
    // own.
    let before = listing(&root);
    run_quick(&quick, &root);
    assert_eq!(listing(&root), before);

    killed.kill().expect("SIGKILL");
    let _ = killed.wait();
    // The killed run could not clean up: its folder and lock are left.
    assert!(listing(&root).contains(&running), "{:?}", listing(&root));
    assert!(
        listing(&root).iter().any(|n| n.starts_with("hangup-run-")),
        "{:?}",
        listing(&root)
    );

    run_quick(&quick, &root);
    assert_eq!(listing(&root), Vec::<String>::new());
}
