//! A program's output: each of its two streams read line by line on a
//! thread of its own, every line stamped on the case's clock and written
//! three places (`program.log`, the record, the lines `log` checks count),
//! and the state the lifecycle waits on (ready, ended, drained).

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::TAIL_LINES;
use crate::model::{Exit, Side};
use crate::record::{EventKind, OutputLine, Route, Stream};

/// The output the program printed, and whether it said it is ready.
pub(super) struct Output {
    state: Mutex<OutputState>,
    /// Signalled on every line and when the program exits.
    pub(super) changed: Condvar,
}

pub(super) struct OutputState {
    /// Every line, with its stream: `log` checks count over all of them.
    pub(super) lines: Vec<OutputLine>,
    pub(super) ready: bool,
    pub(super) exit: Option<Exit>,
    /// How many of its pipes are still open (their readers have not met
    /// EOF): stdout, stderr, and when it is traced its tracer's records.
    open_streams: u8,
    /// `program.log`, when the artifact folder could be made.
    file: Option<std::fs::File>,
}

impl Output {
    /// Nothing printed yet, `streams` pipes open; lines are appended to
    /// `file` (`program.log`) when there is one.
    pub(super) fn new(file: Option<std::fs::File>, streams: u8) -> Output {
        Output {
            state: Mutex::new(OutputState {
                lines: Vec::new(),
                ready: false,
                exit: None,
                open_streams: streams,
                file,
            }),
            changed: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One of its pipes is at its end.
    pub(super) fn stream_ended(&self) {
        let mut state = self.lock();
        state.open_streams = state.open_streams.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Waits up to `limit` for every reader to meet EOF, so that what the
    /// program printed, and the calls it made, before it ended are all on
    /// the record (and in its tail) before the case is. Once the program has ended, every process
    /// of its PID namespace has too (its init's end kills them), so the
    /// pipes close at once; the limit only bounds a surprise.
    pub(super) fn wait_drained(&self, limit: Duration) {
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
    pub(super) fn wait_exit(&self, limit: Duration) -> Option<Exit> {
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
    pub(super) fn tail(&self) -> Vec<OutputLine> {
        let from = self.lines.len().saturating_sub(TAIL_LINES);
        self.lines[from..].to_vec()
    }

    /// Appends `text` to `program.log`, if it is open: a full disk loses
    /// log lines, not the case.
    pub(super) fn log(&mut self, text: std::fmt::Arguments<'_>) {
        if let Some(file) = &mut self.file {
            let _ = file.write_fmt(text);
        }
    }
}

/// A thread that reads one of the program's streams line by line. Each
/// line is made once and goes three places: `program.log`, stamped on the
/// clock of the record the route leads to (as the event is), the lines
/// `log` checks count, and the record.
pub(super) fn read_lines(
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
