//! What `hangup diff` reads of a report: bounded, streamed, one case at a
//! time.
//!
//! A report is read from a file of at most [`MAX_REPORT_BYTES`]; a larger
//! one is refused before a byte of it is parsed, naming the file, its size
//! and the cap. The size a file's metadata gives is checked first, and the
//! reading itself stops one byte past the cap, so a pipe or a file that
//! grows while it is read is refused too, never read on.
//!
//! The report is parsed from the reader as it comes ([`serde`]'s
//! `DeserializeSeed` over `rounds[].cases[]`): each case is read as its type
//! ([`CaseReport`]), reduced at once to what the diff compares of it
//! ([`ComparedCase`]: its name, its verdict, its observations), and its
//! events are dropped; of the rounds only the last is kept. The memory a
//! report takes is then that of one case as it is read, and the
//! observations of the last round read and of the round being read: not
//! the file's size twice over (a copy of its bytes, then its every round
//! as types), and at worst about the size of its largest case.
//!
//! A round holds each case once; a report with two entries of one case
//! in a round was not written by hangup (it would be compared as one of
//! them, silently) and is refused, naming the case and the round.
//!
//! What the report's types accept is accepted, and refused as
//! [`Report::read`](crate::report::Report::read) refuses it: a report of
//! another format is named as such when its `format` comes first, as
//! hangup writes it (one whose `format` comes after its rounds is read as
//! this format, and refused as such if it is not); fields this hangup does
//! not know are skipped, as `format`'s promise says.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{ComparedCase, Comparison, Difference, Masks};
use crate::model::Escaped;
use crate::report::CaseReport;
use crate::report::format::{FORMAT, ReadError};
use crate::report::matrix::Matrix;
use crate::suite::Tolerance;

/// The largest report `hangup diff` reads: 256 MiB.
///
/// A report of every bundled suite is a few MB, and hangup bounds what
/// each case keeps of a program's output, traced calls and loop rounds to
/// a few hundred KB, so a report of thousands of cases, or of many rounds
/// (`--repeat`), fits with room to spare; a larger file is not one a run
/// of hangup wrote, or not one worth reading whole.
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

/// Why a report could not be read for `hangup diff`, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", Escaped(.report.display()))]
#[non_exhaustive]
pub struct InputError {
    /// The report: its path, or `base` or `new` for one read from memory.
    pub report: PathBuf,
    /// Why.
    pub source: ReadError,
}

/// What the diff keeps of a report: the cases of its last round, each
/// reduced to what is compared of it ([`ComparedCase`]), in file order.
#[derive(Debug, Default)]
pub struct LastRound {
    cases: Vec<ComparedCase>,
    /// The report's sweep matrices, for a diff cell by cell.
    sweeps: Vec<Matrix>,
    /// The cases asked for whole ([`LastRound::open_keeping`]).
    kept: Vec<CaseReport>,
}

impl LastRound {
    /// Reads the report at `path`, of at most [`MAX_REPORT_BYTES`]: a
    /// larger file is refused from its metadata, before it is read, and
    /// one that turns out larger as it is read (a pipe, a file that grows)
    /// when the reading passes the cap.
    pub fn open(path: &Path) -> Result<LastRound, InputError> {
        LastRound::open_keeping(path, &BTreeSet::new())
    }

    /// Reads the report at `path` as [`LastRound::open`] does, and keeps
    /// the last round's cases named in `keep` whole ([`LastRound::kept`]):
    /// the ladders of the cases a diff found changed.
    pub fn open_keeping(path: &Path, keep: &BTreeSet<String>) -> Result<LastRound, InputError> {
        let named = |source| InputError {
            report: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(|e| named(ReadError::Unreadable(e)))?;
        let metadata = file
            .metadata()
            .map_err(|e| named(ReadError::Unreadable(e)))?;
        if metadata.is_file() && metadata.len() > MAX_REPORT_BYTES {
            return Err(named(ReadError::TooLarge {
                size: Some(metadata.len()),
                cap: MAX_REPORT_BYTES,
            }));
        }
        LastRound::read_keeping(file, MAX_REPORT_BYTES, keep).map_err(named)
    }

    /// Reads a report from `reader`, refusing it once more than `cap`
    /// bytes come (at most `cap + 1` are read), or when a round holds a
    /// case twice.
    pub fn read(reader: impl Read, cap: u64) -> Result<LastRound, ReadError> {
        LastRound::read_keeping(reader, cap, &BTreeSet::new())
    }

    /// [`LastRound::read`], keeping the last round's cases named in
    /// `keep` whole.
    fn read_keeping(
        reader: impl Read,
        cap: u64,
        keep: &BTreeSet<String>,
    ) -> Result<LastRound, ReadError> {
        let mut limited = reader.take(cap.saturating_add(1));
        let refused = RefCell::new(None);
        let parsed = {
            let mut json = serde_json::Deserializer::from_reader(BufReader::new(&mut limited));
            ReportSeed {
                refused: &refused,
                keep,
            }
            .deserialize(&mut json)
            .and_then(|last| json.end().map(|()| last))
        };
        // Past the cap, whatever the parser made of the bytes it got: the
        // report was cut there.
        if limited.limit() == 0 {
            return Err(ReadError::TooLarge { size: None, cap });
        }
        if let Some(why) = refused.into_inner() {
            return Err(why);
        }
        parsed.map_err(|e| {
            if e.is_io() {
                ReadError::Unreadable(e.into())
            } else {
                ReadError::NotAReport(e.to_string())
            }
        })
    }

    /// What the diff keeps of `cases`, a round held in memory; refused
    /// when a case's masks do not compile.
    pub fn of(cases: &[CaseReport]) -> Result<LastRound, super::MaskError> {
        Ok(LastRound {
            cases: cases
                .iter()
                .map(ComparedCase::of)
                .collect::<Result<_, _>>()?,
            sweeps: crate::report::matrix::Matrix::of(cases),
            kept: Vec::new(),
        })
    }

    /// The names of its cases, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.cases.iter().map(ComparedCase::name)
    }

    /// Its cases as the diff compares them.
    pub fn cases(&self) -> &[ComparedCase] {
        &self.cases
    }

    /// The cases of its last round it was asked to keep whole, in file
    /// order.
    pub fn kept(&self) -> &[CaseReport] {
        &self.kept
    }

    /// Its sweeps' matrices (of its last round).
    pub fn sweeps(&self) -> &[Matrix] {
        &self.sweeps
    }
}

/// `hangup diff` of two reports held in memory, as the command reads and
/// shows them (no accept file; the default timing tolerance): the text it
/// prints, or why a report was refused (`base` or `new`). The fuzz target
/// `diff_reports` goes through here.
pub fn read_and_compare(base: &[u8], new: &[u8]) -> Result<String, InputError> {
    let read = |bytes: &[u8], name: &str| {
        LastRound::read(bytes, MAX_REPORT_BYTES).map_err(|source| InputError {
            report: name.into(),
            source,
        })
    };
    let (base, new) = (read(base, "base")?, read(new, "new")?);
    let comparison = Comparison::of(&base, &new, Tolerance::DEFAULT);
    Ok(comparison.render(&BTreeSet::new()))
}

/// Where a typed refusal waits while the parser unwinds: serde's errors
/// are text, and a refusal of this reader is more than text.
type Refused = RefCell<Option<ReadError>>;

/// Records `why` and stops the parser.
fn refuse<T, E: de::Error>(refused: &Refused, why: ReadError) -> Result<T, E> {
    *refused.borrow_mut() = Some(why);
    Err(E::custom("refused"))
}

/// The report's keys this reader acts on.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ReportField {
    Format,
    Tool,
    Rounds,
    Versions,
    Sweeps,
    Noise,
    #[serde(other)]
    Other,
}

/// The whole report, kept as its last round.
struct ReportSeed<'a> {
    refused: &'a Refused,
    /// The cases kept whole, by name (for the HTML diff's ladders).
    keep: &'a BTreeSet<String>,
}

impl<'de> DeserializeSeed<'de> for ReportSeed<'_> {
    type Value = LastRound;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LastRound, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReportSeed<'_> {
    type Value = LastRound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hangup JSON report")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LastRound, A::Error> {
        let (mut format, mut tool, mut rounds) = (None, None, None);
        let (mut versions, mut noise) = (false, false);
        let mut sweeps: Option<Vec<Matrix>> = None;
        while let Some(field) = map.next_key::<ReportField>()? {
            match field {
                ReportField::Format => {
                    if format.is_some() {
                        return Err(de::Error::duplicate_field("format"));
                    }
                    let found: Option<u64> = map.next_value()?;
                    match found {
                        None => {
                            return refuse(
                                self.refused,
                                ReadError::NotAReport("it has no `format`".into()),
                            );
                        }
                        Some(found) if found != u64::from(FORMAT) => {
                            return refuse(self.refused, ReadError::other_format(found));
                        }
                        Some(found) => format = Some(found),
                    }
                }
                ReportField::Tool => {
                    if tool.is_some() {
                        return Err(de::Error::duplicate_field("tool"));
                    }
                    tool = Some(map.next_value::<String>()?);
                }
                ReportField::Rounds => {
                    if rounds.is_some() {
                        return Err(de::Error::duplicate_field("rounds"));
                    }
                    rounds = Some(map.next_value_seed(RoundsSeed {
                        refused: self.refused,
                        keep: self.keep,
                    })?);
                }
                ReportField::Versions => {
                    if versions {
                        return Err(de::Error::duplicate_field("versions"));
                    }
                    // Read as their type, and dropped: the diff compares
                    // the rounds.
                    map.next_value_seed(EachSeed::<Difference>(std::marker::PhantomData))?;
                    versions = true;
                }
                ReportField::Sweeps => {
                    if sweeps.is_some() {
                        return Err(de::Error::duplicate_field("sweeps"));
                    }
                    sweeps = Some(map.next_value()?);
                }
                ReportField::Noise => {
                    if noise {
                        return Err(de::Error::duplicate_field("noise"));
                    }
                    map.next_value_seed(EachSeed::<Difference>(std::marker::PhantomData))?;
                    noise = true;
                }
                ReportField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if format.is_none() {
            return refuse(
                self.refused,
                ReadError::NotAReport("it has no `format`".into()),
            );
        }
        if tool.is_none() {
            return Err(de::Error::missing_field("tool"));
        }
        let Some(last) = rounds else {
            return Err(de::Error::missing_field("rounds"));
        };
        let mut last = last.unwrap_or_default();
        last.sweeps = sweeps.unwrap_or_default();
        Ok(last)
    }
}

/// `rounds`: each round read in turn, the last kept (none when there is
/// no round).
struct RoundsSeed<'a> {
    refused: &'a Refused,
    /// The cases kept whole, by name (for the HTML diff's ladders).
    keep: &'a BTreeSet<String>,
}

impl<'de> DeserializeSeed<'de> for RoundsSeed<'_> {
    type Value = Option<LastRound>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RoundsSeed<'_> {
    type Value = Option<LastRound>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of rounds")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut last = None;
        let mut number = 1;
        while let Some(round) = seq.next_element_seed(RoundSeed {
            refused: self.refused,
            keep: self.keep,
            number,
        })? {
            last = Some(round);
            number += 1;
        }
        Ok(last)
    }
}

/// The keys of a round.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RoundField {
    Round,
    Cases,
    #[serde(other)]
    Other,
}

/// One round: its cases, each reduced as it is read.
struct RoundSeed<'a> {
    refused: &'a Refused,
    /// The cases kept whole, by name (for the HTML diff's ladders).
    keep: &'a BTreeSet<String>,
    /// The round's place in `rounds`, from 1 (as hangup numbers them).
    number: usize,
}

impl<'de> DeserializeSeed<'de> for RoundSeed<'_> {
    type Value = LastRound;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LastRound, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RoundSeed<'_> {
    type Value = LastRound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a round")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LastRound, A::Error> {
        let (mut round, mut cases) = (None, None);
        while let Some(field) = map.next_key::<RoundField>()? {
            match field {
                RoundField::Round => {
                    if round.is_some() {
                        return Err(de::Error::duplicate_field("round"));
                    }
                    round = Some(map.next_value::<usize>()?);
                }
                RoundField::Cases => {
                    if cases.is_some() {
                        return Err(de::Error::duplicate_field("cases"));
                    }
                    cases = Some(map.next_value_seed(CasesSeed {
                        refused: self.refused,
                        keep: self.keep,
                        round: self.number,
                    })?);
                }
                RoundField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if round.is_none() {
            return Err(de::Error::missing_field("round"));
        }
        cases.ok_or_else(|| de::Error::missing_field("cases"))
    }
}

/// A round's `cases`: each read as its type, refused when its name came
/// before in the round, and reduced to what the diff compares.
struct CasesSeed<'a> {
    refused: &'a Refused,
    /// The cases kept whole, by name (for the HTML diff's ladders).
    keep: &'a BTreeSet<String>,
    round: usize,
}

impl<'de> DeserializeSeed<'de> for CasesSeed<'_> {
    type Value = LastRound;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LastRound, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CasesSeed<'_> {
    type Value = LastRound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of case reports")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LastRound, A::Error> {
        let mut names = HashSet::new();
        let (mut cases, mut kept) = (Vec::new(), Vec::new());
        // The cases of a suite share their masks: compiled once for each
        // run of cases that do.
        let mut masks = Masks::default();
        while let Some(case) = seq.next_element::<CaseReport>()? {
            if masks.written() != case.masks.as_slice() {
                masks = match Masks::compile(&case.masks) {
                    Ok(masks) => masks,
                    Err(why) => {
                        return refuse(
                            self.refused,
                            ReadError::Masks {
                                case: case.name,
                                why,
                            },
                        );
                    }
                };
            }
            let reduced = ComparedCase::masked_by(&case, &masks);
            if self.keep.contains(&case.name) {
                kept.push(case);
            }
            if !names.insert(reduced.name.clone()) {
                return refuse(
                    self.refused,
                    ReadError::DuplicateCase {
                        case: reduced.name,
                        round: self.round,
                    },
                );
            }
            cases.push(reduced);
        }
        Ok(LastRound {
            cases,
            sweeps: Vec::new(),
            kept,
        })
    }
}

/// A sequence of `T`, each read as its type and dropped.
struct EachSeed<T>(std::marker::PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>> DeserializeSeed<'de> for EachSeed<T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for EachSeed<T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<T>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{CallResult, Outcome, Side};
    use crate::record::{EventKind, StepId, Timeline};
    use crate::report::{CaseStatus, Report};
    use crate::suite::SocketCall;

    /// A passed case named `name` whose client's recv met `outcome`.
    fn case(name: &str, outcome: Outcome) -> CaseReport {
        let mut timeline = Timeline::default();
        timeline.push(
            Duration::from_millis(1),
            Some(Side::Client),
            EventKind::Call {
                step: StepId::at(1),
                call: SocketCall::Recv {
                    max: 64,
                    timeout: None,
                },
                on: None,
                took: Duration::from_millis(2),
                busy: Duration::ZERO,
                result: CallResult {
                    outcome,
                    bytes: 0,
                    ready: None,
                    short: None,
                },
            },
        );
        CaseReport::new(
            (name.into(), "s".into(), "c".into(), "s.toml:1:1".into()),
            CaseStatus::Passed,
            Duration::from_millis(5),
            timeline,
            Duration::ZERO,
        )
    }

    /// A report of these rounds, as `hangup run --json` writes it.
    fn report(rounds: &[Vec<CaseReport>]) -> Vec<u8> {
        serde_json::to_vec_pretty(&Report::new(rounds, Vec::new(), Vec::new())).expect("json")
    }

    fn names(last: &LastRound) -> Vec<&str> {
        last.names().collect()
    }

    #[test]
    fn a_report_of_the_cap_reads_and_one_byte_more_is_refused() {
        let bytes = report(&[vec![case("s::a", Outcome::Eof)]]);
        let size = bytes.len() as u64;
        let last = LastRound::read(bytes.as_slice(), size).expect("a report of the cap reads");
        assert_eq!(names(&last), ["s::a"]);
        let err = LastRound::read(bytes.as_slice(), size - 1).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { size: None, cap } if cap == size - 1),
            "{err:?}"
        );
        // Trailing whitespace counts: it is the file's size that is capped.
        let mut padded = bytes.clone();
        padded.push(b'\n');
        assert!(matches!(
            LastRound::read(padded.as_slice(), size),
            Err(ReadError::TooLarge { .. })
        ));
    }

    /// A source that never ends (a pipe that keeps writing) is read to
    /// one byte past the cap and no further.
    #[test]
    fn a_source_that_never_ends_is_refused_at_the_cap() {
        let endless = b"{\"format\": 2, \"tool\": \"".chain(std::io::repeat(b'x'));
        let err = LastRound::read(endless, 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is larger than the 1 MiB (1048576 bytes) hangup diff reads of a report"
        );
    }

    #[test]
    fn a_file_larger_than_the_cap_is_refused_from_its_size_unread() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("huge.json");
        // Sparse: nothing is written, and nothing need be read.
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_REPORT_BYTES + 1).expect("set_len");
        let err = LastRound::open(&path).unwrap_err();
        assert!(
            matches!(err.source, ReadError::TooLarge { size: Some(size), cap: MAX_REPORT_BYTES } if size == MAX_REPORT_BYTES + 1),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: it is 256.0 MiB (268435457 bytes), larger than the 256 MiB (268435456 bytes) hangup diff reads of a report",
                path.display()
            )
        );
    }

    /// Two entries of one case in a round are refused, whichever round;
    /// the same case once in each of two rounds is what `--repeat` writes.
    #[test]
    fn a_case_twice_in_a_round_is_refused_naming_it_and_the_round() {
        let a = || case("s::a", Outcome::Eof);
        let b = || case("s::b", Outcome::Eof);
        let rounds = [vec![a(), b()], vec![a(), b()]];
        let last = LastRound::read(report(&rounds).as_slice(), MAX_REPORT_BYTES).expect("reads");
        assert_eq!(names(&last), ["s::a", "s::b"]);
        for (rounds, round) in [
            (vec![vec![a(), b(), a()]], 1),
            (vec![vec![a(), b()], vec![b(), b(), b()]], 2),
        ] {
            let bytes = report(&rounds);
            for err in [
                LastRound::read(bytes.as_slice(), MAX_REPORT_BYTES).unwrap_err(),
                Report::read(&bytes).unwrap_err(),
            ] {
                assert!(
                    matches!(&err, ReadError::DuplicateCase { case, round: r } if case.starts_with("s::") && *r == round),
                    "{err:?}"
                );
            }
        }
    }

    /// A case's name from a report is shown escaped in the refusal: one
    /// line, nothing a terminal obeys.
    #[test]
    fn a_refusal_shows_the_report_s_strings_escaped() {
        let forged = "s::a\n0 differences in 0 cases of 1 case, 0 accepted\u{1b}]0;x\u{7}";
        let bytes = report(&[vec![case(forged, Outcome::Eof), case(forged, Outcome::Eof)]]);
        let err = InputError {
            report: "base\n.json".into(),
            source: LastRound::read(bytes.as_slice(), MAX_REPORT_BYTES).unwrap_err(),
        };
        assert_eq!(
            err.to_string(),
            r"base\n.json: it holds case s::a\n0 differences in 0 cases of 1 case, 0 accepted\u{1b}]0;x\u{7} more than once in round 1, and a round runs each case once"
        );
        // And what the report's types refuse, quoted by the parser.
        let bytes = br#"{"format": 2, "tool": "t", "rounds": [{"round": 1, "cases": [{"status": "odd\n1 passed\u001b"}]}]}"#;
        let err = LastRound::read(bytes.as_slice(), MAX_REPORT_BYTES)
            .unwrap_err()
            .to_string();
        assert!(!err.contains(['\n', '\u{1b}']), "{err:?}");
    }

    /// Only the last round is kept, as the diff compares it.
    #[test]
    fn the_last_round_is_what_is_kept() {
        let rounds = [
            vec![case("s::a", Outcome::Eof)],
            vec![case("s::b", Outcome::Eof)],
        ];
        let last = LastRound::read(report(&rounds).as_slice(), MAX_REPORT_BYTES).expect("reads");
        assert_eq!(names(&last), ["s::b"]);
        let none = br#"{"format": 2, "tool": "t", "rounds": []}"#;
        let last = LastRound::read(none.as_slice(), MAX_REPORT_BYTES).expect("reads");
        assert!(names(&last).is_empty());
    }

    /// The streamed reading finds what the whole report's types and
    /// [`super::super::diff`] find.
    #[test]
    fn streamed_and_whole_readings_find_the_same_differences() {
        let eagain = Outcome::Errno(crate::model::Errno::from_raw(nix::libc::EAGAIN));
        let base = report(&[vec![case("s::a", Outcome::Eof), case("s::b", Outcome::Eof)]]);
        let new = report(&[
            vec![case("s::a", Outcome::Eof)],
            vec![case("s::a", eagain), case("s::c", Outcome::Eof)],
        ]);
        let whole = |bytes: &[u8]| Report::read(bytes).expect("reads").last_round().to_vec();
        let expected =
            super::super::diff(&whole(&base), &whole(&new), Tolerance::DEFAULT).expect("masks");
        let read = |bytes: &[u8]| LastRound::read(bytes, MAX_REPORT_BYTES).expect("reads");
        let found = Comparison::of(&read(&base), &read(&new), Tolerance::DEFAULT);
        assert_eq!(found.differences, expected);
        assert_eq!(found.cases, ["s::a", "s::b", "s::c"]);
        assert_eq!(
            read_and_compare(&base, &new).expect("compares"),
            "s::a: client #1 recv: eof -> EAGAIN\n\
             s::b: only in base\n\
             s::c: only in new\n\
             \n\
             3 differences in 3 cases of 3 cases, 0 accepted"
        );
    }

    /// What a reader of one format refuses: another format (named, when
    /// `format` comes first), no format, a report without its rounds;
    /// what it skips: fields it does not know.
    #[test]
    fn another_format_is_named_and_unknown_fields_are_skipped() {
        let read = |text: &str| LastRound::read(text.as_bytes(), MAX_REPORT_BYTES);
        let err = read(r#"{"format": 1, "rounds": "anything"}"#).unwrap_err();
        assert!(
            matches!(err, ReadError::OtherFormat { found: 1, .. }),
            "{err:?}"
        );
        let err = read(r#"{"format": 3}"#).unwrap_err().to_string();
        assert!(err.contains("newer hangup"), "{err}");
        for no_format in ["{}", r#"{"format": null, "tool": "t", "rounds": []}"#] {
            let err = read(no_format).unwrap_err().to_string();
            assert!(err.contains("it has no `format`"), "{err}");
        }
        for (text, missing) in [
            (r#"{"format": 2, "rounds": []}"#, "missing field `tool`"),
            (r#"{"format": 2, "tool": "t"}"#, "missing field `rounds`"),
            (r#"{"format": 2, "format": 2}"#, "duplicate field `format`"),
            (
                r#"{"format": 2, "tool": "t", "rounds": [{"round": 1}]}"#,
                "missing field `cases`",
            ),
            (
                r#"{"format": 2, "tool": "t", "rounds": [], "versions": [{}]}"#,
                "missing field `case`",
            ),
            (r#"[2, "t", []]"#, "expected a hangup JSON report"),
            (
                r#"{"format": 2, "tool": "t", "rounds": []} x"#,
                "trailing characters",
            ),
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(err.contains(missing), "{text}: {err}");
        }
        let later = r#"{"later": {"a": [1, 2]}, "format": 2, "tool": "t",
            "rounds": [{"round": 1, "cases": [], "later": null}], "versions": []}"#;
        assert!(names(&read(later).expect("reads")).is_empty());
    }
}
