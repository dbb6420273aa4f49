//! Where a program's command is filled in from: the substitutions
//! (`{port}`, `{host}`, `{suite_dir}`, `{artifacts}`, `{bin:NAME}`,
//! `{fixture:NAME}`, `{env:NAME}`) and the folders they are looked up in.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::SutError;
use crate::record::Recorder;

/// What the substitutions in a program's command stand for.
#[derive(Debug, Clone)]
pub struct Places {
    /// The folder of the suite file (`{suite_dir}`, and where the program
    /// runs unless the suite says otherwise).
    pub suite_dir: PathBuf,
    /// Folders searched for `{fixture:NAME}`.
    pub fixtures: Vec<PathBuf>,
    /// The address a server reaches its clients on (`{host}`): 127.0.0.1,
    /// or on two hosts the server's host's address.
    pub host: IpAddr,
}

impl Places {
    /// The suite's folder, and where fixtures are found: `HANGUP_FIXTURES`
    /// first when it is set (another build of them: the second version of
    /// an upgrade diff), then the folders next to the running binary where
    /// cargo puts the fixtures it builds (`target/<profile>/`, whether this
    /// is the `hangup` binary there or a test binary in its `deps/`).
    pub fn for_suite(suite_file: &Path) -> Places {
        let suite_dir = suite_file
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        // Absolute: the program runs in this folder, so a relative
        // `{suite_dir}/app.js` in its command would name the folder twice.
        let suite_dir = std::path::absolute(&suite_dir).unwrap_or(suite_dir);
        let mut fixtures: Vec<PathBuf> = std::env::var_os("HANGUP_FIXTURES")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .collect();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            if let Some(up) = dir.parent().filter(|_| dir.ends_with("deps")) {
                fixtures.push(up.to_path_buf());
            }
            fixtures.push(dir);
        }
        fixtures.extend(package_builds(&suite_dir));
        Places {
            suite_dir,
            fixtures,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// Where cargo put the binaries of the package the suite belongs to, for an
/// installed `hangup run` (which runs from `~/.cargo/bin`, beside no build):
/// `HANGUP_BIN_DIR` when set; else, from the suite's folder up, the first
/// folder with a `Cargo.toml` and a build (`$CARGO_TARGET_DIR` when set,
/// else its `target/`), its `debug/` then `release/`. A workspace's member
/// finds the workspace's `target/` the same way, further up.
fn package_builds(suite_dir: &Path) -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("HANGUP_BIN_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let target_of = |package: &Path| match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => package.join(dir),
        _ => package.join("target"),
    };
    suite_dir
        .ancestors()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(target_of)
        .find(|target| target.is_dir())
        .map(|target| vec![target.join("debug"), target.join("release")])
        .unwrap_or_default()
}

/// Fills in `{port}`, `{host}`, `{artifacts}`, `{suite_dir}`, `{bin:NAME}` (a binary
/// cargo built: the one of your package, under `cargo test`),
/// `{fixture:NAME}` (the same lookup, for hangup's fixtures) and
/// `{env:NAME}` (an environment variable, which must be set).
pub(super) fn substitute(
    text: &str,
    port: u16,
    places: &Places,
    record: &Recorder,
) -> Result<String, SutError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let name = &rest[open + 1..open + close];
        match name {
            "port" => out.push_str(&port.to_string()),
            "host" => out.push_str(&places.host.to_string()),
            "suite_dir" => out.push_str(&places.suite_dir.to_string_lossy()),
            "artifacts" => {
                let dir = record.artifacts().map_err(SutError::Substitution)?;
                out.push_str(&dir.to_string_lossy());
            }
            _ => {
                // A binary cargo built beside the one running: a fixture of
                // hangup's, or, in a downstream repository, the program of
                // the package whose tests these are.
                let built = name.strip_prefix("fixture:").or(name.strip_prefix("bin:"));
                if let Some(binary) = built {
                    out.push_str(&find_fixture(binary, places)?.to_string_lossy());
                } else if let Some(variable) = name.strip_prefix("env:") {
                    let value = std::env::var(variable).map_err(|_| {
                        SutError::Substitution(format!(
                            "the program's command names {{env:{variable}}}, and {variable} is not set"
                        ))
                    })?;
                    out.push_str(&value);
                } else {
                    out.push_str(&rest[open..=open + close]);
                }
            }
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn find_fixture(name: &str, places: &Places) -> Result<PathBuf, SutError> {
    places
        .fixtures
        .iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            let searched: Vec<String> = places
                .fixtures
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            SutError::Substitution(format!(
                "no binary `{name}` in {} (cargo builds a package's binaries for its integration tests, or `cargo build`; hangup's fixtures with `cargo build -p hangup-fixtures`, and `cargo test --workspace` builds them too; `HANGUP_BIN_DIR` names another folder)",
                searched.join(" or ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(fixtures: Vec<PathBuf>) -> Places {
        Places {
            suite_dir: PathBuf::from("/suites/http"),
            fixtures,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    #[test]
    fn the_suite_folder_is_absolute_so_the_program_can_use_it_from_there() {
        let cwd = std::env::current_dir().expect("cwd");
        let places = Places::for_suite(Path::new("examples/node-http/node_http.toml"));
        assert_eq!(places.suite_dir, cwd.join("examples/node-http"));
        assert_eq!(Places::for_suite(Path::new("x.toml")).suite_dir, cwd);
    }

    #[test]
    fn substitutions_fill_in_what_they_name_and_leave_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("stream"), "").expect("a fake fixture");
        let places = places(vec![PathBuf::from("/nowhere"), dir.path().to_path_buf()]);
        let record = Recorder::new(dir.path().to_path_buf(), "t-".into());
        let fill = |text: &str| substitute(text, 8080, &places, &record);
        assert_eq!(fill("--port={port}").expect("port"), "--port=8080");
        assert_eq!(fill("{host}:{port}").expect("host"), "127.0.0.1:8080");
        assert_eq!(
            fill("{suite_dir}/app.py").expect("dir"),
            "/suites/http/app.py"
        );
        assert_eq!(
            fill("{fixture:stream}").expect("fixture"),
            dir.path().join("stream").to_string_lossy()
        );
        // SAFETY (of the test): set_var is unsound only against concurrent
        // getenv in other threads; this name is read by this test alone.
        unsafe { std::env::set_var("HANGUP_TEST_SERVER_BIN", "/opt/server") };
        assert_eq!(
            fill("{env:HANGUP_TEST_SERVER_BIN}").expect("env"),
            "/opt/server"
        );
        let unset = fill("{env:HANGUP_TEST_NOT_SET}").unwrap_err().to_string();
        assert!(unset.contains("HANGUP_TEST_NOT_SET is not set"), "{unset}");
        // Not ours: left as written, JSON and shell braces alike.
        assert_eq!(fill("{\"a\": 1} {x} {").expect("as is"), "{\"a\": 1} {x} {");
        assert_eq!(
            fill("{bin:stream}").expect("a package's binary"),
            dir.path().join("stream").to_string_lossy()
        );
        let missing = fill("{fixture:nope}").unwrap_err().to_string();
        assert!(
            missing.contains("no binary `nope` in /nowhere or"),
            "{missing}"
        );
        assert!(
            missing.contains("cargo build -p hangup-fixtures"),
            "{missing}"
        );
        // {artifacts} makes the case's artifact folder.
        let made = fill("{artifacts}/x").expect("artifacts");
        assert!(
            made.starts_with(&*dir.path().join("t-").to_string_lossy()),
            "{made}"
        );
    }
}
