//! A program's output: each of its two streams read line by line on a
//! thread of its own, every line stamped on the case's clock and written
//! three places (`program.log`, the record, the counts `log` checks read),
//! and the state the lifecycle waits on (ready, ended, drained).
//!
//! Nothing here grows with what the program prints: a line is kept up to
//! [`LINE_CAP`], `log` checks read counters that every line updates as it
//! passes (their patterns are known before the program starts), memory
//! keeps only the last [`TAIL_LINES`] lines, and `program.log` stops at
//! [`PROGRAM_LOG_CAP`] saying so. The record bounds its own share (see
//! `record::Flood`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::TAIL_LINES;
use crate::model::{Exit, Side};
use crate::record::{EventKind, OutputLine, Route, Stream};

/// The output the program printed, and whether it said it is ready.
pub(super) struct Output {
    /// The patterns of the `log` checks that may read this program's
    /// output, each counted on every line as it passes.
    patterns: Vec<regex::Regex>,
    state: Mutex<OutputState>,
    /// Signalled on every line and when the program exits.
    pub(super) changed: Condvar,
    /// Its stdout and stderr as their readers go through them, so that
    /// [`Output::drained`] can tell whether all it wrote is read.
    pipes: Mutex<Vec<Arc<Pipe>>>,
}

/// One of the program's output pipes, as its reader goes through it.
struct Pipe {
    /// A second handle on the pipe's read end, never read: only asked how
    /// many bytes wait in it (a read end held open changes nothing for
    /// the writers, which still meet EOF's counterpart only when every
    /// reader is gone; the reader thread holds one anyway).
    queue: OwnedFd,
    /// [`BUSY`], [`IN_READ`] or [`ENDED`].
    reader: AtomicU8,
}

/// The reader is taking lines out of what it read.
const BUSY: u8 = 0;
/// The reader is in `read(2)` on the pipe, or about to be: every line it
/// read before is on the record.
const IN_READ: u8 = 1;
/// The reader met the pipe's end.
const ENDED: u8 = 2;

impl Pipe {
    /// Whether everything written to the pipe is on the record: its reader
    /// met its end, or waits in `read(2)` with nothing queued.
    ///
    /// A reader whose `read(2)` has just returned but which has not yet
    /// said so looks drained for that instant; the case's settle asks
    /// twice, a few milliseconds apart, and a line read that late still
    /// reaches the record of a case that stops its own program (the stop
    /// waits for the readers' EOF).
    fn drained(&self) -> bool {
        match self.reader.load(Ordering::SeqCst) {
            ENDED => true,
            IN_READ => queued_bytes(self.queue.as_fd().as_raw_fd()) == 0,
            _ => false,
        }
    }
}

/// How many bytes wait in the pipe whose read end is `fd` (`FIONREAD`); 0
/// when the kernel will not say, so that a settle never waits on it.
fn queued_bytes(fd: std::os::fd::RawFd) -> nix::libc::c_int {
    let mut queued: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // at `queued`; `fd` is open for the length of the call (its `OwnedFd`
    // is borrowed by the caller).
    let done = unsafe { nix::libc::ioctl(fd, nix::libc::FIONREAD, &mut queued) };
    if done < 0 { 0 } else { queued }
}

/// The reader's side of a [`Pipe`]: says when it enters `read(2)` and
/// when it met the end.
struct Watched {
    file: std::fs::File,
    pipe: Arc<Pipe>,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.pipe.reader.store(IN_READ, Ordering::SeqCst);
        let read = self.file.read(buf);
        let now = match read {
            Ok(0) => ENDED,
            _ => BUSY,
        };
        self.pipe.reader.store(now, Ordering::SeqCst);
        read
    }
}

pub(super) struct OutputState {
    /// Its last [`TAIL_LINES`] lines, with their streams, for failure
    /// reports.
    last: VecDeque<OutputLine>,
    /// Per pattern of [`Output::patterns`], how many lines so far match it.
    pub(super) counts: Vec<u64>,
    pub(super) ready: bool,
    pub(super) exit: Option<Exit>,
    /// How many of its pipes are still open (their readers have not met
    /// EOF): stdout, stderr, and when it is traced its tracer's records.
    open_streams: u8,
    /// `program.log`, when the artifact folder could be made.
    file: Option<std::fs::File>,
    /// How many bytes went into `program.log`.
    logged: u64,
}

impl Output {
    /// Nothing printed yet, `streams` pipes open, each line counted
    /// against `patterns`; lines are appended to `file` (`program.log`)
    /// when there is one.
    pub(super) fn new(
        file: Option<std::fs::File>,
        streams: u8,
        patterns: Vec<regex::Regex>,
    ) -> Output {
        Output {
            state: Mutex::new(OutputState {
                last: VecDeque::with_capacity(TAIL_LINES),
                counts: vec![0; patterns.len()],
                ready: false,
                exit: None,
                open_streams: streams,
                file,
                logged: 0,
            }),
            patterns,
            changed: Condvar::new(),
            pipes: Mutex::default(),
        }
    }

    /// Whether every line the program wrote so far is on the record (see
    /// [`Pipe::drained`]).
    pub(super) fn drained(&self) -> bool {
        self.pipes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .all(|pipe| pipe.drained())
    }

    /// `file`, read through a [`Pipe`] that [`Output::drained`] asks
    /// about; `file` alone when its read end cannot be duplicated (then
    /// nothing waits on it).
    fn watch(&self, file: std::fs::File) -> Box<dyn Read + Send> {
        let Ok(queue) = file.as_fd().try_clone_to_owned() else {
            return Box::new(file);
        };
        let pipe = Arc::new(Pipe {
            queue,
            reader: AtomicU8::new(BUSY),
        });
        self.pipes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&pipe));
        Box::new(Watched { file, pipe })
    }

    /// Where `pattern` is among the counted patterns, if it is.
    pub(super) fn counted(&self, pattern: &regex::Regex) -> Option<usize> {
        self.patterns
            .iter()
            .position(|p| p.as_str() == pattern.as_str())
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
        self.last.iter().cloned().collect()
    }

    /// Keeps `line` among the last ones, and counts it against every
    /// pattern in `matched` (one flag per pattern).
    fn take(&mut self, line: OutputLine, matched: impl Iterator<Item = bool>) {
        for (count, matched) in self.counts.iter_mut().zip(matched) {
            *count += u64::from(matched);
        }
        if self.last.len() == TAIL_LINES {
            self.last.pop_front();
        }
        self.last.push_back(line);
    }

    /// Appends `text` to `program.log`, if it is open and under its cap: a
    /// full disk loses log lines, not the case. The line that would pass
    /// the cap is replaced by one saying where the log stopped.
    pub(super) fn log(&mut self, text: std::fmt::Arguments<'_>) {
        let Some(file) = &mut self.file else {
            return;
        };
        let text = text.to_string();
        let after = self.logged + text.len() as u64;
        if after <= PROGRAM_LOG_CAP {
            let _ = file.write_all(text.as_bytes());
            self.logged = after;
        } else {
            let _ = writeln!(
                file,
                "# program.log stops here: it reached its cap of {} MiB; \
                 the case's report counts the lines left out",
                PROGRAM_LOG_CAP >> 20
            );
            self.file = None;
        }
    }
}

/// The most `program.log` holds: a program that floods its output fills
/// the disk no further than this (a day of a chatty server's log at 1 KiB
/// a second fits).
pub const PROGRAM_LOG_CAP: u64 = 64 << 20;

/// A thread that reads one of the program's streams line by line. Each
/// line is made once and goes three places: `program.log`, stamped on the
/// clock of the record the route leads to (as the event is), the counts
/// `log` checks read (and the last lines kept for failures), and the
/// record. Patterns are matched before the lock is taken, so a slow
/// pattern holds up no other thread.
pub(super) fn read_lines(
    from: std::fs::File,
    stream: Stream,
    side: Side,
    ready: Option<regex::Regex>,
    route: &Route,
    output: &Arc<Output>,
) {
    let (route, output) = (route.clone(), Arc::clone(output));
    let from = output.watch(from);
    // Detached: a process the program started may hold the pipe open after
    // the program is gone; nothing waits for this thread.
    let _ = std::thread::Builder::new()
        .name(format!("program {}", stream.name()))
        .spawn(move || {
            let mut reader = BufReader::new(from);
            let mut bytes = Vec::new();
            loop {
                let Ok(Some(line)) = next_line(&mut reader, stream, &mut bytes, LINE_CAP) else {
                    output.stream_ended();
                    return;
                };
                let now = Instant::now();
                let record = route.current();
                let matched: Vec<bool> = output
                    .patterns
                    .iter()
                    .map(|p| p.is_match(&line.line))
                    .collect();
                let is_ready = ready.as_ref().is_some_and(|r| r.is_match(&line.line));
                let mut state = output.lock();
                let ms = record.at(now).as_secs_f64() * 1000.0;
                state.log(format_args!("{ms:>10.1} {line}\n"));
                state.ready |= is_ready;
                state.take(line.clone(), matched.into_iter());
                output.changed.notify_all();
                drop(state);
                let OutputLine { stream, line, cut } = line;
                record.push(now, Some(side), EventKind::Output { stream, line, cut });
            }
        });
}

/// The most of one line of a program's output that hangup keeps: a line
/// that grows past it (a program that never writes a newline) is kept up
/// to here and the rest counted, not held, however long it grows.
pub const LINE_CAP: usize = 64 * 1024;

/// The next line of a program's `stream` as hangup keeps it: up to `cap`
/// bytes (the rest counted in `cut`), without its newline or a CR before
/// it, invalid UTF-8 replaced; `None` at the end of the stream. `bytes` is
/// the reader's buffer, reused from line to line. Public for the fuzz
/// target that feeds it arbitrary output.
pub fn next_line(
    reader: &mut impl BufRead,
    stream: Stream,
    bytes: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<OutputLine>> {
    let Some(cut) = read_line_capped(reader, bytes, cap)? else {
        return Ok(None);
    };
    Ok(Some(OutputLine {
        stream,
        line: String::from_utf8_lossy(bytes)
            .trim_end_matches('\r')
            .to_string(),
        cut,
    }))
}

/// Reads one line into `line` (without its newline), keeping at most
/// `cap` bytes of it and counting the rest as it passes: `Some(bytes left
/// out)`, or `None` at the end of the stream with nothing read. Memory
/// stays at `cap` plus the reader's buffer whatever the program writes.
pub(super) fn read_line_capped(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<u64>> {
    line.clear();
    let mut left_out = 0u64;
    let mut read_any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if buf.is_empty() {
            return Ok(read_any.then_some(left_out));
        }
        read_any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let content = &buf[..newline.unwrap_or(buf.len())];
        let kept = content.len().min(cap.saturating_sub(line.len()));
        line.extend_from_slice(&content[..kept]);
        left_out += (content.len() - kept) as u64;
        let used = newline.map_or(buf.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(left_out));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    use super::*;

    /// Every line of `input`, as the reader hands them out with `cap`.
    fn lines(input: impl Read, cap: usize) -> Vec<(String, u64)> {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(cut) = read_line_capped(&mut reader, &mut line, cap).expect("read") {
            out.push((String::from_utf8_lossy(&line).into_owned(), cut));
        }
        out
    }

    #[test]
    fn lines_under_the_cap_are_whole_and_a_last_line_without_newline_counts() {
        assert_eq!(
            lines(&b"one\n\ntwo\r\nthree"[..], 8),
            [
                ("one".into(), 0),
                (String::new(), 0),
                ("two\r".into(), 0),
                ("three".into(), 0)
            ]
        );
        assert_eq!(lines(&b""[..], 8), []);
    }

    #[test]
    fn a_line_past_the_cap_is_kept_to_it_and_the_rest_counted() {
        assert_eq!(
            lines(&b"0123456789\nok\n"[..], 4),
            [("0123".into(), 6), ("ok".into(), 0)]
        );
    }

    /// A 100 MB line without a newline, then a short one: the reader keeps
    /// the cap's worth and never holds more, however long the line.
    #[test]
    fn an_endless_line_is_never_held_whole() {
        let huge = std::io::repeat(b'x').take(100 << 20);
        let mut reader = BufReader::new(huge.chain(&b"\nafter\n"[..]));
        let mut line = Vec::new();
        let cut = read_line_capped(&mut reader, &mut line, LINE_CAP).expect("read");
        assert_eq!(line.len(), LINE_CAP);
        assert_eq!(cut, Some((100 << 20) - LINE_CAP as u64));
        assert!(line.capacity() <= 2 * LINE_CAP, "{}", line.capacity());
        let next = read_line_capped(&mut reader, &mut line, LINE_CAP).expect("read");
        assert_eq!((next, line.as_slice()), (Some(0), &b"after"[..]));
        assert_eq!(
            read_line_capped(&mut reader, &mut line, LINE_CAP).expect("read"),
            None
        );
    }
}
