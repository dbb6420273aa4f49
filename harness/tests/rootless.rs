//! The rootless path, end to end: [`enter_user_namespace`] can only be
//! tested in a process that is still single-threaded and not root, which a
//! libtest unit test never is. So this test binary (`harness = false`)
//! re-executes itself in "probe" mode, selected by an environment variable
//! checked first thing in `main`:
//!
//! - as the current user (root or not);
//! - when root, as `nobody` through `setpriv` (util-linux), from a copy of
//!   the binary in a world-readable temporary directory ([`ProbeCopy`]);
//! - when root, as root without `CAP_SYS_ADMIN` (what an unprivileged
//!   container looks like), to see the refusal explained.
//!
//! The trials that need root are ignored otherwise. (Not automated: a
//! refused user namespace for non-root, which needs a host sysctl changed;
//! checked by hand with `user.max_user_namespaces=0` set inside a parent
//! user namespace.)

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Output};

use hangup::sandbox::{CaseNamespace, SandboxError, enter_user_namespace};
use libtest_mimic::{Arguments, Failed, Trial};

/// Environment variable that turns this binary into a probe.
const PROBE: &str = "HANGUP_ROOTLESS_PROBE";

fn main() -> ExitCode {
    // Probe modes must run before libtest-mimic starts any thread.
    match std::env::var(PROBE).as_deref() {
        Ok("case") => return probe_case(),
        Ok("late") => return probe_late(),
        _ => {}
    }
    let args = Arguments::from_args();
    let root = nix::unistd::geteuid().is_root();
    // The copy other users execute is written now, while this process has
    // one thread: written while another trial's thread forks, the copy's
    // write descriptor would live on in that child until it execs, and
    // executing the copy meanwhile fails with ETXTBSY ("Text file busy").
    let copy = match root.then(ProbeCopy::new).transpose() {
        Ok(copy) => std::sync::Arc::new(copy),
        Err(e) => {
            eprintln!("cannot copy the probe for other users: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (c1, c2, c3) = (copy.clone(), copy.clone(), copy.clone());
    let trials = vec![
        Trial::test("rootless::case_as_current_user", || {
            let out = run_probe("case", None)?;
            expect_prefix(&out, "ok ")
        }),
        Trial::test("rootless::case_as_nobody", move || {
            let out = run_probe("case", Some((ProbeCopy::get(&c1)?, 65534)))?;
            expect_prefix(&out, "ok UserNamespace { uid: 65534, gid: 65534 }")
        })
        .with_ignored_flag(!root),
        Trial::test("rootless::root_without_cap_sys_admin_is_explained", move || {
            let err = run_probe_expecting_failure(
                "case",
                ProbeCopy::get(&c2)?,
                &["--bounding-set=-sys_admin", "--inh-caps=-sys_admin"],
            )?;
            expect_prefix(
                &err,
                "failed to create a network namespace for the case (EPERM: Operation not permitted): the process is root in the initial user namespace but lacks CAP_SYS_ADMIN",
            )
        })
        .with_ignored_flag(!root),
        Trial::test("rootless::late_call_is_explained_as_nobody", move || {
            let out = run_probe("late", Some((ProbeCopy::get(&c3)?, 65534)))?;
            expect_prefix(&out, "refused: failed to enter a user namespace: the process already has 2 threads; call hangup::sandbox::enter_user_namespace() first thing in main")
        })
        .with_ignored_flag(!root),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

fn expect_prefix(out: &str, prefix: &str) -> Result<(), Failed> {
    if out.starts_with(prefix) {
        Ok(())
    } else {
        Err(format!("expected the probe to print {prefix:?}..., it printed {out:?}").into())
    }
}

/// A world-readable copy of this binary, which `setpriv` runs as another
/// user (the build directory under `/root` is not reachable by `nobody`).
struct ProbeCopy {
    dir: tempfile::TempDir,
}

impl ProbeCopy {
    fn new() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
        let copy = dir.path().join("rootless-probe");
        fs::copy(std::env::current_exe()?, &copy)?;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o755))?;
        Ok(Self { dir })
    }

    /// The copy's path; only trials run as root ask for it.
    fn get(copy: &Option<Self>) -> Result<PathBuf, Failed> {
        copy.as_ref()
            .map(|c| c.dir.path().join("rootless-probe"))
            .ok_or_else(|| "no copy of the probe: not running as root".into())
    }
}

/// Runs this binary in probe `mode`, as `uid` (and the same gid) from the
/// copy when given, and returns its stdout; a failing exit is a failed
/// trial.
fn run_probe(mode: &str, as_user: Option<(PathBuf, u32)>) -> Result<String, Failed> {
    let setpriv = as_user.map(|(copy, uid)| {
        let args = vec![
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".to_owned(),
        ];
        (copy, args)
    });
    let output = probe_output(mode, setpriv)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "the probe failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(stdout)
}

/// Runs the probe through `setpriv setpriv_args`, expects it to fail, and
/// returns its stderr.
fn run_probe_expecting_failure(
    mode: &str,
    copy: PathBuf,
    setpriv_args: &[&str],
) -> Result<String, Failed> {
    let args = setpriv_args.iter().map(|a| a.to_string()).collect();
    let output = probe_output(mode, Some((copy, args)))?;
    if output.status.success() {
        return Err(format!(
            "the probe succeeded although it should not have: {}",
            String::from_utf8_lossy(&output.stdout)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs this binary in probe `mode`, directly or (given a world-readable
/// copy) through `setpriv` with `setpriv_args`.
fn probe_output(mode: &str, setpriv: Option<(PathBuf, Vec<String>)>) -> Result<Output, Failed> {
    let exe = std::env::current_exe()?;
    let mut command = match &setpriv {
        None => Command::new(&exe),
        Some((copy, args)) => {
            let mut c = Command::new("setpriv");
            c.args(args).arg(copy);
            c
        }
    };
    command
        .env(PROBE, mode)
        .current_dir("/")
        .output()
        .map_err(|e| match setpriv {
            None => format!("cannot run {}: {e}", exe.display()).into(),
            Some(_) => format!("cannot run setpriv (util-linux): {e}").into(),
        })
}

/// Enters the user namespace, runs a case on a fresh thread, prints
/// `ok <privileges>`.
fn probe_case() -> ExitCode {
    let privileges = match enter_user_namespace() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let case = std::thread::spawn(|| -> Result<(), SandboxError> {
        let ns = CaseNamespace::create()?;
        ns.set_sysctl("net.ipv4.tcp_fin_timeout", "3")?;
        assert_eq!(ns.sysctl("net.ipv4.tcp_fin_timeout")?, "3");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1");
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        server.read_exact(&mut buf).unwrap();
        Ok(())
    });
    match case.join().expect("the case thread panicked") {
        Ok(()) => {
            println!("ok {privileges:?}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Starts a thread first, then asks for the user namespace: must be refused
/// with the explanation (as non-root; root skips the user namespace).
fn probe_late() -> ExitCode {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || rx.recv());
    let result = enter_user_namespace();
    drop(tx);
    let _ = thread.join();
    match result {
        Err(e) => {
            println!("refused: {e}");
            ExitCode::SUCCESS
        }
        Ok(p) => {
            println!("entered {p:?} although a thread was running");
            ExitCode::FAILURE
        }
    }
}

fn fail(e: SandboxError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::FAILURE
}
