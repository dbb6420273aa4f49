//! A program under test: a user's server, run inside the case's network
//! namespace and observed as closely as the scripted peers are.
//!
//! [`start`] spawns the program from the case's thread, so it inherits the
//! case's namespace and talks only to the case's scripted peers. It runs in
//! a session and a PID namespace of its own, and holds no copy of any other
//! case's sockets ([`spawn`]): its process group is the unit that is
//! signalled, and everything it starts, even in a session of its own, ends
//! with it, also when hangup is killed.
//!
//! Its stdout and stderr are read line by line on threads of their own,
//! each line stamped on the case's clock: recorded as an event (so it shows
//! in the timeline), appended to `program.log` in the case's artifact
//! folder, and kept as a tail for failure reports. A watcher thread reaps
//! it and reports how it ended, so an exit while the case runs is noticed
//! at once.

mod raw;
mod spawn;
mod trace;

pub use trace::{Calls, TracedCall};

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::model::{Side, TcpState};
use crate::observe::SockDiag;
use crate::record::{EventKind, OpenFd, OutputLine, Recorder, Route, Stream};
use crate::suite::Program;

/// How many of the program's last output lines a failure report shows.
pub const TAIL_LINES: usize = 20;

/// How often readiness through the listener is sampled.
const READY_POLL: Duration = Duration::from_millis(2);

/// How long, once a program ended, its output readers get to take what is
/// left in its pipes.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// How long a program killed with SIGKILL may take to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub use crate::model::Exit;

/// What went wrong with a program.
#[derive(Debug, thiserror::Error)]
pub enum SutError {
    /// A substitution in its command could not be filled in.
    #[error("failed to start the program: {0}")]
    Substitution(String),
    /// The kernel would not start it.
    #[error("failed to start the program `{command}`: {source}")]
    Spawn {
        /// The command as resolved.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It did not become ready in time, or ended first.
    #[error("the program {0}")]
    NotReady(String),
}

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
        Places {
            suite_dir,
            fixtures,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// The output the program printed, and whether it said it is ready.
struct Output {
    state: Mutex<OutputState>,
    /// Signalled on every line and when the program exits.
    changed: Condvar,
}

struct OutputState {
    /// Every line, with its stream: `log` checks count over all of them.
    lines: Vec<OutputLine>,
    ready: bool,
    exit: Option<Exit>,
    /// How many of its pipes are still open (their readers have not met
    /// EOF): stdout, stderr, and when it is traced its tracer's records.
    open_streams: u8,
    /// `program.log`, when the artifact folder could be made.
    file: Option<std::fs::File>,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One of its pipes is at its end.
    fn stream_ended(&self) {
        let mut state = self.lock();
        state.open_streams = state.open_streams.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits up to `limit` for every reader to meet EOF, so that what the
    /// program printed, and the calls it made, before it ended are all on
    /// the record (and in its tail) before the case is. Once the program has ended, every process
    /// of its PID namespace has too (its init's end kills them), so the
    /// pipes close at once; the limit only bounds a surprise.
    fn wait_drained(&self, limit: Duration) {
        let until = Instant::now() + limit;
        let mut state = self.lock();
        while state.open_streams > 0 {
            let now = Instant::now();
            if now >= until {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How the program ended, waiting up to `limit` for it to end.
    fn wait_exit(&self, limit: Duration) -> Option<Exit> {
        let until = Instant::now() + limit;
        let mut state = self.lock();
        loop {
            if state.exit.is_some() {
                return state.exit;
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl OutputState {
    /// The last [`TAIL_LINES`] lines, oldest first.
    fn tail(&self) -> Vec<OutputLine> {
        let from = self.lines.len().saturating_sub(TAIL_LINES);
        self.lines[from..].to_vec()
    }

    /// Appends `text` to `program.log`, if it is open: a full disk loses
    /// log lines, not the case.
    fn log(&mut self, text: std::fmt::Arguments<'_>) {
        if let Some(file) = &mut self.file {
            let _ = file.write_fmt(text);
        }
    }
}

/// A view of a running program that any thread of the case may hold:
/// `log` checks count its output lines, `released` checks read its fd
/// table.
#[derive(Clone)]
pub struct ProgramView {
    output: Arc<Output>,
    /// The program's own pid, whose fd table is read.
    pid: Pid,
    /// Its process group: the relay's pid (see [`init`]).
    group: Pid,
    /// Set when hangup asks it to stop (a `signal` step, or the end of the
    /// case), so its exit then is not a crash.
    stopping: Arc<AtomicBool>,
    /// Its socket calls, when they are traced.
    calls: Option<Arc<Calls>>,
    /// The first output line `log` checks count: lines printed before the
    /// case it serves began belong to earlier cases.
    from: usize,
}

/// Lines in `program.log` are stamped on the clock of the case the program
/// serves when it prints them, as its timeline shows them; a program that
/// serves a whole suite has a line there where each case begins and ends.
impl ProgramView {
    /// Writes `what` into `program.log` as a line of its own (`# what`).
    pub fn log_marker(&self, what: &str) {
        self.output.lock().log(format_args!("# {what}\n"));
    }
}

/// A TCP socket the program holds, as its fd table and `TCP_INFO` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The process that holds it, when not the program itself but a
    /// process it started (a worker).
    pub process: Option<Pid>,
    /// Its fd number in that process.
    pub fd: i32,
    /// Its state.
    pub state: TcpState,
    /// Its local address.
    pub local: Option<SocketAddr>,
    /// Its peer (none once it is closed or reset: the kernel forgets it).
    pub remote: Option<SocketAddr>,
    /// Its inode, as the fd table links it (`socket:[inode]`).
    pub inode: u64,
}

/// `fd 7: CLOSE_WAIT 127.0.0.1:8080 <- 127.0.0.1:41234`, or `pid 57 fd 7:
/// ...` for a process the program started.
impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pid) = self.process {
            write!(f, "pid {pid} ")?;
        }
        write!(f, "fd {}: {}", self.fd, self.state.name())?;
        if let Some(local) = self.local {
            write!(f, " {local}")?;
        }
        if let Some(remote) = self.remote {
            write!(f, " <- {remote}")?;
        }
        Ok(())
    }
}

impl ProgramView {
    /// The program's own pid, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends the program's process group `signal`; an exit after it is the
    /// program's answer, not a crash. SIGSTOP and SIGCONT only pause and
    /// resume it (a suite fills its accept queue meanwhile): an exit after
    /// those is still a crash.
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        if !matches!(signal, Signal::SIGSTOP | Signal::SIGCONT) {
            self.stopping.store(true, Ordering::SeqCst);
        }
        // Once the relay is reaped its pid may name a stranger's group.
        if self.output.lock().exit.is_some() {
            return Err(nix::errno::Errno::ESRCH);
        }
        killpg(self.group, signal)
    }

    /// The program and every process it started that still runs, as the
    /// host numbers them: a master and its workers alike. Found through
    /// each thread's `children` in /proc, so a process whose parent died
    /// (reparented to the namespace's init) is no longer among them.
    fn processes(&self) -> Vec<Pid> {
        let mut all = vec![self.pid];
        let mut next = 0;
        while let Some(&pid) = all.get(next) {
            next += 1;
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let children = std::fs::read_to_string(task.path().join("children"));
                for child in children.iter().flat_map(|c| c.split_whitespace()) {
                    if let Ok(child) = child.parse::<i32>() {
                        let child = Pid::from_raw(child);
                        if !all.contains(&child) {
                            all.push(child);
                        }
                    }
                }
            }
        }
        all
    }

    /// Whether every thread of the program and of the processes it started
    /// is stopped (`T`, or `t` under its tracer), as /proc says: a SIGSTOP
    /// is delivered when each thread next leaves the kernel, so a thread in
    /// `accept` may first take one more connection.
    pub fn stopped(&self) -> bool {
        self.processes().iter().all(|pid| {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                // Gone: it holds nothing.
                return true;
            };
            tasks.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("stat"))
                    .ok()
                    .and_then(|stat| {
                        // The state follows the name, which may hold spaces
                        // and parentheses: after the last ')'.
                        let after = stat.rsplit_once(')')?.1;
                        after.split_whitespace().next().map(str::to_string)
                    })
                    .is_none_or(|state| state == "T" || state == "t" || state == "Z")
            })
        })
    }

    /// Every fd the program and the processes it started have open, with
    /// what each is (read from /proc without touching it), by process and
    /// fd number.
    pub fn open_fds(&self) -> std::io::Result<Vec<OpenFd>> {
        let mut out = Vec::new();
        for (n, pid) in self.processes().into_iter().enumerate() {
            let listed = std::fs::read_dir(format!("/proc/{pid}/fd"));
            // The program's own table must be there; a process it started
            // may have ended since it was listed.
            let entries = match (n, listed) {
                (_, Ok(entries)) => entries,
                (0, Err(err)) => return Err(err),
                (_, Err(_)) => continue,
            };
            for entry in entries.flatten() {
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                // Closed since the listing: not open.
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue;
                };
                let mut target = target.to_string_lossy().into_owned();
                if target.starts_with("socket:[") {
                    if let Some(protocol) = socket_protocol(&entry.path()) {
                        target = format!("socket {protocol}");
                    }
                }
                if let Some((cut, _)) = target.char_indices().nth(OpenFd::TARGET_KEPT) {
                    target.truncate(cut);
                    target.push_str("...");
                }
                out.push(OpenFd {
                    pid: (n > 0).then(|| pid.as_raw()),
                    fd,
                    target,
                });
            }
        }
        out.sort_by_key(|f| (f.pid, f.fd));
        Ok(out)
    }

    /// The TCP sockets (IPv4 and IPv6) the program holds, it or a process
    /// it started (a worker), found through their fd tables and the
    /// kernel's socket table, without touching them: each
    /// `socket:[inode]` in `/proc/<pid>/fd` that the socket's own
    /// `system.sockprotoname` says is TCP is looked up by inode in a
    /// sock_diag dump of the case's namespace (`diag`). One the table no
    /// longer lists was reset into CLOSE: the program holds it all the same.
    ///
    /// Nothing is copied: a copy of the program's socket in hangup (as
    /// `pidfd_getfd` would make) would hold the socket open past the
    /// program's own `close`, delaying its FIN for as long as it lives.
    pub fn held_sockets(&self, diag: &mut SockDiag) -> std::io::Result<Vec<Held>> {
        let table = diag.tcp_sockets().map_err(std::io::Error::other)?;
        let mut held = Vec::new();
        for (n, pid) in self.processes().into_iter().enumerate() {
            let listed = std::fs::read_dir(format!("/proc/{pid}/fd"));
            // The program's own table must be there; a process it started
            // may have ended since it was listed.
            let entries = match (n, listed) {
                (_, Ok(entries)) => entries,
                (0, Err(err)) => return Err(err),
                (_, Err(_)) => continue,
            };
            let process = (n > 0).then_some(pid);
            for entry in entries {
                let Ok(entry) = entry else {
                    continue;
                };
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                // Closed since the listing, or not a socket: not held.
                let Some(inode) = std::fs::read_link(entry.path()).ok().and_then(|target| {
                    let target = target.to_string_lossy().into_owned();
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse::<u32>()
                        .ok()
                }) else {
                    continue;
                };
                if !matches!(
                    socket_protocol(&entry.path()).as_deref(),
                    Some("TCP" | "TCPv6")
                ) {
                    continue;
                }
                held.push(match table.iter().find(|s| s.inode == inode) {
                    Some(socket) => Held {
                        inode: inode.into(),
                        process,
                        fd,
                        state: socket.state,
                        local: Some(socket.local),
                        remote: (socket.state != TcpState::Listen).then_some(socket.remote),
                    },
                    None => Held {
                        inode: inode.into(),
                        process,
                        fd,
                        state: TcpState::Close,
                        local: None,
                        remote: None,
                    },
                });
            }
        }
        held.sort_by_key(|h| (h.process.map(Pid::as_raw), h.fd));
        Ok(held)
    }

    /// How the program ended, once it has.
    pub fn exit(&self) -> Option<Exit> {
        self.output.lock().exit
    }

    /// How the program ended, waiting up to `limit` for it to end. A
    /// program's sockets close while it exits, a moment before it can be
    /// reaped: a peer that met its closed port asks this.
    pub fn exit_within(&self, limit: Duration) -> Option<Exit> {
        self.output.wait_exit(limit)
    }

    /// Its socket calls so far, when they are traced.
    pub fn calls(&self) -> Option<&Arc<Calls>> {
        self.calls.as_ref()
    }

    /// How many lines so far, on either stream, match `pattern` (of the
    /// lines since this view was made with [`from_now`](Self::from_now)).
    pub fn count(&self, pattern: &regex::Regex) -> usize {
        let state = self.output.lock();
        state
            .lines
            .get(self.from..)
            .unwrap_or_default()
            .iter()
            .filter(|output| pattern.is_match(&output.line))
            .count()
    }

    /// The same view, counting only the lines printed from now on: for a
    /// program that serves a whole suite, a case's `log` checks see the
    /// output of its own time.
    pub fn from_now(&self) -> ProgramView {
        ProgramView {
            from: self.output.lock().lines.len(),
            ..self.clone()
        }
    }
}

/// A running program.
pub struct Running {
    /// The program's own pid, as the host sees it.
    pid: Pid,
    /// Its process group: the relay's pid (see [`init`]), which hangup
    /// spawned and reaps.
    group: Pid,
    spec: Program,
    /// Where it is told to listen ([`Places::host`]).
    host: IpAddr,
    output: Arc<Output>,
    /// Set before hangup asks it to stop, so its exit is not a crash.
    stopping: Arc<AtomicBool>,
    /// Its socket calls, when they are traced.
    calls: Option<Arc<Calls>>,
}

/// How a program's stop went.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// How it ended.
    pub exit: Exit,
    /// Whether it had to be killed because it ignored the stop signal for
    /// its whole grace period.
    pub killed: bool,
    /// Its last output lines.
    pub tail: Vec<OutputLine>,
}

/// Starts `spec` from the calling thread, which must be in the case's
/// namespace and live until the program is stopped (`PR_SET_PDEATHSIG` is
/// tied to it). `on_exit` hears of an exit hangup did not ask for (a crash,
/// or an exit while the case runs) with the program's last output. With
/// `trace`, its socket calls are traced ([`trace`]).
pub fn start(
    spec: &Program,
    places: &Places,
    record: &Recorder,
    route: &Route,
    side: Side,
    trace: bool,
    on_exit: impl FnOnce(Exit, Vec<OutputLine>) + Send + 'static,
) -> Result<Running, SutError> {
    let argv: Vec<String> = spec
        .argv
        .iter()
        .map(|arg| substitute(arg, spec.port, places, record))
        .collect::<Result<_, _>>()?;
    let cwd = match &spec.cwd {
        Some(cwd) => PathBuf::from(substitute(cwd, spec.port, places, record)?),
        None => places.suite_dir.clone(),
    };
    let env = spec
        .env
        .iter()
        .map(|(key, value)| Ok((key.clone(), substitute(value, spec.port, places, record)?)))
        .collect::<Result<Vec<_>, SutError>>()?;
    let spawned = spawn::spawn(&argv, &env, &cwd, trace).map_err(|source| SutError::Spawn {
        command: argv.join(" "),
        source,
    })?;
    // What it prints comes after this: its start is stamped here.
    let started = Instant::now();
    let (group, pid) = (spawned.relay, spawned.program);
    let file = record.artifacts().ok().and_then(|dir| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("program.log"))
            .ok()
    });
    let output = Arc::new(Output {
        state: Mutex::new(OutputState {
            lines: Vec::new(),
            ready: false,
            exit: None,
            open_streams: if spawned.trace.is_some() { 3 } else { 2 },
            file,
        }),
        changed: Condvar::new(),
    });
    read_lines(
        spawned.stdout,
        Stream::Out,
        side,
        spec.ready.clone(),
        route,
        &output,
    );
    read_lines(
        spawned.stderr,
        Stream::Err,
        side,
        spec.ready.clone(),
        route,
        &output,
    );
    let calls = spawned.trace.map(|records| {
        let calls = Arc::new(Calls::default());
        let drained = Arc::clone(&output);
        trace::read_records(records, side, route, &calls, move || drained.stream_ended());
        calls
    });
    let stopping = Arc::new(AtomicBool::new(false));
    watch(group, side, route, &output, &stopping, on_exit);
    route.push(
        started,
        Some(side),
        EventKind::ProgramStarted {
            argv: argv.iter().map(|arg| bounded(arg)).collect(),
            pid: pid.as_raw(),
        },
    );
    Ok(Running {
        pid,
        group,
        spec: spec.clone(),
        host: places.host,
        output,
        stopping,
        calls,
    })
}

/// An argument as the record keeps it: its first KiB (a suite may pass a
/// whole script as one argument).
fn bounded(arg: &str) -> String {
    const KEPT: usize = 1024;
    match arg.char_indices().nth(KEPT) {
        Some((cut, _)) => format!("{}...", &arg[..cut]),
        None => arg.to_string(),
    }
}

/// Fills in `{port}`, `{host}`, `{artifacts}`, `{suite_dir}`, `{bin:NAME}` (a binary
/// cargo built: the one of your package, under `cargo test`),
/// `{fixture:NAME}` (the same lookup, for hangup's fixtures) and
/// `{env:NAME}` (an environment variable, which must be set).
fn substitute(
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
                "no binary `{name}` in {} (cargo builds a package's binaries for its integration tests; hangup's fixtures with `cargo build -p hangup-fixtures`, and `cargo test --workspace` builds them too)",
                searched.join(" or ")
            ))
        })
}

/// A thread that reads one of the program's streams line by line. Each
/// line is made once and goes three places: `program.log`, stamped on the
/// clock of the record the route leads to (as the event is), the lines
/// `log` checks count, and the record.
fn read_lines(
    from: impl Read + Send + 'static,
    stream: Stream,
    side: Side,
    ready: Option<regex::Regex>,
    route: &Route,
    output: &Arc<Output>,
) {
    let (route, output) = (route.clone(), Arc::clone(output));
    // Detached: a process the program started may hold the pipe open after
    // the program is gone; nothing waits for this thread.
    let _ = std::thread::Builder::new()
        .name(format!("program {}", stream.name()))
        .spawn(move || {
            let mut reader = BufReader::new(from);
            let mut bytes = Vec::new();
            loop {
                bytes.clear();
                match reader.read_until(b'\n', &mut bytes) {
                    Ok(0) | Err(_) => {
                        output.stream_ended();
                        return;
                    }
                    Ok(_) => {}
                }
                let now = Instant::now();
                let line = OutputLine {
                    stream,
                    line: String::from_utf8_lossy(&bytes)
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                };
                let record = route.current();
                let mut state = output.lock();
                let ms = record.at(now).as_secs_f64() * 1000.0;
                state.log(format_args!("{ms:>10.1} {line}\n"));
                if ready.as_ref().is_some_and(|r| r.is_match(&line.line)) {
                    state.ready = true;
                }
                state.lines.push(line.clone());
                output.changed.notify_all();
                drop(state);
                let OutputLine { stream, line } = line;
                record.push(now, Some(side), EventKind::Output { stream, line });
            }
        });
}

/// A thread that reaps the program and reports how it ended.
fn watch(
    relay: Pid,
    side: Side,
    route: &Route,
    output: &Arc<Output>,
    stopping: &Arc<AtomicBool>,
    on_exit: impl FnOnce(Exit, Vec<OutputLine>) + Send + 'static,
) {
    let (route, output, stopping) = (route.clone(), Arc::clone(output), Arc::clone(stopping));
    let _ = std::thread::Builder::new()
        .name("program watcher".into())
        .spawn(move || {
            // The relay ends as the program did (see `spawn`).
            let exit = loop {
                match nix::sys::wait::waitpid(relay, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => break Exit::Code(code),
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => {
                        break Exit::Signal(signal as i32);
                    }
                    Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                    Err(_) => break Exit::Code(-1),
                }
            };
            route.push(
                Instant::now(),
                Some(side),
                EventKind::ProgramExited { exit },
            );
            {
                let mut state = output.lock();
                state.exit = Some(exit);
                output.changed.notify_all();
            }
            // Its last words may still be in the pipes: the readers take
            // them before the tail is.
            output.wait_drained(DRAIN_WAIT);
            let tail = output.lock().tail();
            if !stopping.load(Ordering::SeqCst) {
                on_exit(exit, tail);
            }
        });
}

impl Running {
    /// The program's process id, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its last output lines, oldest first.
    pub fn tail(&self) -> Vec<OutputLine> {
        self.output.lock().tail()
    }

    /// A view of it for `log` and `released` checks.
    pub fn view(&self) -> ProgramView {
        ProgramView {
            output: Arc::clone(&self.output),
            pid: self.pid,
            group: self.group,
            stopping: Arc::clone(&self.stopping),
            calls: self.calls.clone(),
            from: 0,
        }
    }

    /// Waits until the program is ready: its `ready` line printed, or else
    /// the kernel lists a listener on its port (a sock_diag lookup, which
    /// no connection of hangup's disturbs).
    pub fn wait_ready(&self, diag: &mut SockDiag) -> Result<(), SutError> {
        let until = Instant::now() + self.spec.within;
        let within = crate::verdict::millis(self.spec.within);
        let mut state = self.output.lock();
        loop {
            if let Some(exit) = state.exit {
                return Err(SutError::NotReady(format!("{exit} before it was ready")));
            }
            let ready = match &self.spec.ready {
                Some(_) => state.ready,
                // A client has nothing to listen on: it runs, so it is ready.
                None if self.spec.role == Side::Client => true,
                None => self.listening(diag),
            };
            if ready {
                return Ok(());
            }
            let now = Instant::now();
            if now >= until {
                let what = match &self.spec.ready {
                    Some(pattern) => format!("printed no line matching `{pattern}`"),
                    None => format!("did not listen on port {}", self.spec.port),
                };
                return Err(SutError::NotReady(format!("{what} within {within}")));
            }
            let wait = match &self.spec.ready {
                Some(_) => until - now,
                None => READY_POLL.min(until - now),
            };
            state = self
                .output
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Whether the kernel lists a listener on the program's port, on its
    /// host's address (`{host}`) or a wildcard address.
    fn listening(&self, diag: &mut SockDiag) -> bool {
        let port = self.spec.port;
        let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        [
            (SocketAddr::from((self.host, port)), any4),
            (SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), any4),
            (SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), any6),
        ]
        .into_iter()
        .any(|(local, remote)| diag.lookup(local, remote).ok() == Some(TcpState::Listen))
    }

    /// Asks the program to stop with its stop signal, gives it its grace
    /// period, then kills its process group. Either way every process it
    /// started ends with its PID namespace.
    pub fn stop(self) -> Stopped {
        self.stopping.store(true, Ordering::SeqCst);
        let group = self.group;
        let _ = killpg(group, self.spec.stop);
        let exit = self.wait_exit(self.spec.grace);
        let killed = exit.is_none();
        // The relay ends only after init, whose end kills everything left
        // in the namespace; so only a program still running needs the
        // SIGKILL (which kills init too). Once the relay is reaped its pid
        // may name a stranger's group: no signal goes to it then.
        if killed {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let exit = exit
            .or_else(|| self.wait_exit(KILL_WAIT))
            .unwrap_or(Exit::Signal(Signal::SIGKILL as i32));
        self.output.wait_drained(DRAIN_WAIT);
        Stopped {
            exit,
            killed,
            tail: self.tail(),
        }
    }

    fn wait_exit(&self, limit: Duration) -> Option<Exit> {
        self.output.wait_exit(limit)
    }
}

/// The protocol of the socket `path` (`/proc/<pid>/fd/<n>`) links to, as
/// its `system.sockprotoname` attribute names it: "TCP", "TCPv6",
/// "UNIX-STREAM", ...; `None` if it is not a socket or is gone.
fn socket_protocol(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut name = [0u8; 32];
    // SAFETY: getxattr writes at most `name.len()` bytes into `name` and
    // returns how many, or -1; both C strings are NUL-terminated.
    let len = unsafe {
        nix::libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            name.as_mut_ptr().cast(),
            name.len(),
        )
    };
    let len = usize::try_from(len).ok()?;
    let name = &name[..len.min(name.len())];
    let name = name.strip_suffix(&[0]).unwrap_or(name);
    Some(String::from_utf8_lossy(name).into_owned())
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

    #[test]
    fn a_long_argument_is_kept_to_its_first_kib() {
        assert_eq!(bounded("python3"), "python3");
        let long = format!("import os\n{}", "é".repeat(2000));
        let kept = bounded(&long);
        assert_eq!(kept.chars().count(), 1024 + 3, "{kept}");
        assert!(kept.starts_with("import os\n") && kept.ends_with("..."));
    }
}
