//! Arbitrary bytes as a program's output, handed over in pieces of
//! arbitrary sizes (where its writes, and hangup's reads, happen to end),
//! through the line reader hangup uses into a case's record and then every
//! writer: the terminal failure and timeline, JUnit and JSON. None may
//! panic; the terminal text holds no raw control byte but newline and tab;
//! the JUnit is well-formed XML; the JSON reads back as the report it was.
//!
//! The first input byte picks the line cap (1 to 256 bytes, so that cut
//! lines are common at fuzzing sizes; hangup's own is 64 KiB), the next
//! eight the sizes of the pieces.
#![no_main]

use std::io::{BufReader, Read};
use std::time::{Duration, Instant};

use hangup::model::Side;
use hangup::record::{EventKind, Recorder, Stream};
use hangup::report::{CaseReport, CaseStatus, Failure, FailureKind};
use libfuzzer_sys::fuzz_target;

/// Hands out `data` in pieces whose sizes cycle through `sizes`.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self
            .sizes
            .get(self.next % self.sizes.len().max(1))
            .map_or(usize::MAX, |&s| usize::from(s) + 1);
        self.next += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else {
        return;
    };
    let cap = usize::from(cap) + 1;
    let (sizes, output) = rest.split_at(rest.len().min(8));
    let pieces = Pieces {
        data: output,
        sizes,
        next: 0,
    };
    // A small buffer, so that lines span many reads.
    let mut reader = BufReader::with_capacity(16, pieces);
    let record = Recorder::new(std::env::temp_dir(), "hangup-fuzz-unused-".into());
    let start = Instant::now();
    record.start_clock(start);
    let mut bytes = Vec::new();
    let mut tail = Vec::new();
    let mut n = 0u64;
    while let Ok(Some(line)) = hangup::sut::next_line(&mut reader, Stream::Err, &mut bytes, cap) {
        assert!(line.line.len() <= cap * 3, "a line past its cap");
        assert!(!line.line.contains('\n'), "a newline inside a line");
        n += 1;
        record.push(
            start + Duration::from_micros(n),
            Some(Side::Server),
            EventKind::Output {
                stream: line.stream,
                line: line.line.clone(),
                cut: line.cut,
            },
        );
        tail.push(line);
    }
    let from = tail.len().saturating_sub(hangup::sut::TAIL_LINES);
    let mut failure = Failure::new(
        FailureKind::Program,
        "the program exited with status 3 while the case ran".into(),
        Duration::from_millis(5),
    );
    failure.output = tail.split_off(from);
    let report = CaseReport::new(
        (
            "fuzz::output".into(),
            "fuzz".into(),
            "output".into(),
            "fuzz.toml:1:1".into(),
        ),
        CaseStatus::Failed(failure),
        Duration::from_millis(6),
        record.finish(),
        Duration::ZERO,
    );

    let terminal = report.render_failure();
    if let Some(raw) = terminal
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        panic!("a raw control character {raw:?} on the terminal:\n{terminal}");
    }

    let xml = hangup::report::junit_xml(
        std::slice::from_ref(&report),
        None,
        hangup::report::Passing::Timeline,
    )
    .expect("junit");
    let xml = String::from_utf8(xml).expect("JUnit is UTF-8");
    if let Err(err) = roxmltree::Document::parse(&xml) {
        panic!("malformed JUnit ({err}):\n{xml}");
    }

    let json = serde_json::to_string(&report).expect("json");
    let back: CaseReport = serde_json::from_str(&json).expect("the JSON reads back");
    assert_eq!(
        serde_json::to_string(&back).expect("json"),
        json,
        "the JSON changed on its way back"
    );
});
