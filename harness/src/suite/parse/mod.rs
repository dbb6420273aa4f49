//! Reading a suite file: TOML in, a validated [`Suite`] or every error out.
//!
//! The file is parsed with `toml`'s span-keeping document parser, then
//! walked by hand one case and one step at a time, each step deserialized on
//! its own through serde. That split is what lets one run report every
//! error in the file (a typo in step 3 does not hide a bad duration in step
//! 9), each with its own span: the first serde error would otherwise end the
//! whole document. The raw types of `raw.rs` avoid `serde(untagged)` and
//! `serde(flatten)`, which would turn precise messages into "data did not
//! match any variant".
//!
//! # Where things are
//!
//! This file holds the [`Reader`]'s core (its problems, their locations
//! and how they are rendered) and [`parse_suite`]. The reader's other
//! methods are in the file of what they read: `case.rs` the top of the
//! file and each case, `step.rs` one step, `program.rs` a `[program]`
//! table and its versions, `whole_case.rs` what a case must hold across
//! its steps and scripts, which no single step shows.

mod case;
mod program;
mod raw;
mod step;
mod sweep;
#[cfg(test)]
mod tests;
mod whole_case;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::de;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::limits::{MAX_FILE_BYTES, MAX_PROBLEMS_SHOWN, bytes_in_words};
use super::{Location, Suite};
use crate::model::Escaped;

/// What went wrong reading a suite.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file or folder could not be read at all.
    #[error("failed to read suite {}: {source}", Escaped(path.display()))]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The path is a FIFO, a device or a socket: reading one could block
    /// forever or never end, so it is refused before it is opened.
    #[error("failed to read suite {}: expected a regular file, found {kind}", Escaped(path.display()))]
    NotAFile {
        /// What was given or found.
        path: PathBuf,
        /// What it is instead ("a FIFO", "a character device", ...).
        kind: &'static str,
    },
    /// The file's name leaves no suite name once `.toml` is taken off
    /// (`...toml`, ` .toml`): its tests would be named `::case`, which
    /// names no suite and reads as nothing on a terminal.
    #[error(
        "failed to read suite {}: expected a file name with a name before `.toml`, found `{}`: a suite is named after its file, and its tests `<suite>::<case>`",
        Escaped(path.display()),
        Escaped(path.file_name().unwrap_or_default().to_string_lossy())
    )]
    Unnamed {
        /// The suite file.
        path: PathBuf,
    },
    /// The file was read but is not a valid suite; every problem is listed.
    #[error("{rendered}")]
    Invalid {
        /// The suite file.
        path: PathBuf,
        /// One entry per problem, in file order.
        diagnostics: Vec<Diagnostic>,
        /// The problems rendered with source excerpts, file:line:col first.
        rendered: String,
    },
}

/// One problem in a suite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub location: Location,
    /// What was expected and what was found.
    pub message: String,
    span: Range<usize>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Parses and validates suite `bytes` read from `path`.
///
/// Bytes that are not UTF-8 are each reported where they are, and the rest
/// of the file is still checked: it is read as if each bad sequence were
/// U+FFFD, which also keeps line:col right (one column per bad sequence)
/// and lets the report show the line.
pub fn parse_suite(path: &Path, bytes: &[u8]) -> Result<Suite, SuiteError> {
    if bytes.len() > MAX_FILE_BYTES {
        let mut reader = Reader::new(path, "");
        reader.problem(
            0..0,
            format!(
                "expected a suite file of at most {}, found one of {} bytes or more",
                bytes_in_words(MAX_FILE_BYTES),
                bytes.len()
            ),
        );
        return Err(reader.into_error());
    }
    let mut problems = Vec::new();
    let lossy;
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            let mut text = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                let bad = chunk.invalid();
                if bad.is_empty() {
                    continue;
                }
                let at = text.len();
                text.push(char::REPLACEMENT_CHARACTER);
                let shown: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
                let (noun, verb) = if bad.len() == 1 {
                    ("byte", "is")
                } else {
                    ("bytes", "are")
                };
                problems.push((
                    at..text.len(),
                    format!(
                        "expected UTF-8 text, found the {noun} {} that {verb} not valid UTF-8",
                        shown.join(" ")
                    ),
                ));
            }
            lossy = text;
            &lossy
        }
    };
    let mut reader = Reader::new(path, text);
    for (span, message) in problems {
        reader.problem(span, message);
    }
    let suite = reader.suite();
    if reader.count == 0 {
        Ok(suite)
    } else {
        Err(reader.into_error())
    }
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    /// The byte offset each line starts at, so a location costs a binary
    /// search, not a scan from the top: loading stays linear in the size of
    /// the file however many steps it has.
    line_starts: Vec<usize>,
    /// The first problems found ([`KEPT_PROBLEMS`] at most), to be sorted
    /// into file order and shown.
    problems: Vec<(Range<usize>, String)>,
    /// Every problem found, kept or not: "did this step add a problem" is
    /// a comparison of counts.
    count: usize,
    /// The steps of the case being read so far, loops' steps included,
    /// against [`MAX_STEPS_PER_CASE`].
    case_steps: usize,
    /// Whether the suite's `[program]` table was written but refused (its
    /// problems reported): the steps that need a program are then not
    /// also reported as having none. One mistake, one error.
    suite_program_refused: bool,
    /// The same for the case being read: its own table's, or the suite's.
    program_refused: bool,
}

/// How many problems are kept to be sorted before the first
/// [`MAX_PROBLEMS_SHOWN`] are shown: they are found nearly in file order,
/// so the first ones found include the first ones in the file.
const KEPT_PROBLEMS: usize = 20 * MAX_PROBLEMS_SHOWN;

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, text: &'a str) -> Reader<'a> {
        Reader {
            path,
            text,
            line_starts: line_starts(text),
            problems: Vec::new(),
            count: 0,
            case_steps: 0,
            suite_program_refused: false,
            program_refused: false,
        }
    }

    /// file:line:col of a byte offset (see [`Location::of_offset`], which
    /// this computes without scanning the file).
    fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        Location {
            path: self.path.to_path_buf(),
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.count += 1;
        if self.problems.len() < KEPT_PROBLEMS {
            self.problems.push((span, message.into()));
        }
    }

    /// A key a table does not take: the one meant, when it is near one
    /// (`nmae` in a case is `name`), else every key `in_what` takes.
    fn unknown_key(&mut self, span: Range<usize>, key: &str, in_what: &str, keys: &[&str]) {
        let message = match crate::model::nearest::nearest(key, keys.iter().copied()) {
            Some(meant) => format!("unknown key `{key}` {in_what}: did you mean `{meant}`?"),
            None => {
                let all: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                format!(
                    "unknown key `{key}` {in_what}, expected one of {}",
                    all.join(", ")
                )
            }
        };
        self.problem(span, message);
    }

    fn toml_problem(&mut self, err: toml::de::Error, fallback: Range<usize>) {
        let span = err.span().unwrap_or(fallback);
        self.problem(span, expected_first(err.message().trim_end()));
    }

    /// Deserializes one value on its own, so its error does not stop the rest.
    fn value<T: de::DeserializeOwned>(&mut self, value: &Spanned<DeValue<'a>>) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(err) => {
                self.toml_problem(err, value.span());
                None
            }
        }
    }

    /// Like [`Reader::value`] for a table of a derived type: each key it
    /// does not take is reported as [`Reader::unknown_key`] does (the key
    /// meant, when it is near one), then left out, so that serde reports
    /// only the table's other problems. One mistake, one error.
    fn table_value<T: de::DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'a>>,
        in_what: &str,
    ) -> Option<T> {
        let DeValue::Table(table) = value.get_ref() else {
            return self.value(value);
        };
        let fields = raw::fields_of::<T>();
        let unknown: Vec<(Range<usize>, String)> = table
            .iter()
            .filter(|(key, _)| !fields.contains(&key.get_ref().as_ref()))
            .map(|(key, _)| (key.span(), key.get_ref().to_string()))
            .collect();
        if unknown.is_empty() {
            return self.value(value);
        }
        for (span, key) in &unknown {
            self.unknown_key(span.clone(), key, in_what, fields);
        }
        let known = table
            .iter()
            .filter(|(key, _)| fields.contains(&key.get_ref().as_ref()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let known = Spanned::new(value.span(), DeValue::Table(known));
        // The table is refused whatever the rest says.
        let _ = self.value::<T>(&known);
        None
    }

    fn into_error(mut self) -> SuiteError {
        let mut problems = std::mem::take(&mut self.problems);
        let kept = problems.len();
        problems.sort_by_key(|(span, _)| span.start);
        problems.dedup();
        // Duplicates (one problem found twice) are not counted as unshown.
        let distinct = self.count - (kept - problems.len());
        problems.truncate(MAX_PROBLEMS_SHOWN);
        let unshown = distinct - problems.len();
        let renderer = Renderer::plain();
        // The path and a message (which may quote the file: a bad case
        // name) are shown escaped, so neither can add a line; the snippet
        // renderer shows the file's own control characters as symbols.
        let path = Escaped(self.path.display()).to_string();
        let mut rendered = String::new();
        let mut diagnostics = Vec::new();
        for (span, message) in problems {
            let location = self.location(span.start);
            let title = Escaped(&message).to_string();
            let report = &[Level::ERROR.primary_title(&title).element(
                Snippet::source(self.text)
                    .path(&path)
                    .annotation(AnnotationKind::Primary.span(span.clone())),
            )];
            rendered.push_str(&renderer.render(report));
            rendered.push('\n');
            diagnostics.push(Diagnostic {
                location,
                message,
                span,
            });
        }
        if unshown > 0 {
            rendered.push_str(&format!(
                "error: {unshown} more problem(s) in {path} not shown: hangup shows the first {MAX_PROBLEMS_SHOWN} of a file\n"
            ));
        }
        SuiteError::Invalid {
            path: self.path.to_path_buf(),
            diagnostics,
            rendered,
        }
    }
}

/// serde words a type mismatch "invalid type: integer `5`, expected a
/// string"; every other message here reads "expected ..., found ...", so
/// turn serde's around to match.
fn expected_first(message: &str) -> String {
    let found = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix));
    // The expected half is ours (a visitor's `expecting`), so split at the
    // last ", expected ": the found half may quote the user's text.
    match found.and_then(|rest| rest.rsplit_once(", expected ")) {
        Some((found, expected)) => format!("expected {expected}, found {found}"),
        None => message.to_string(),
    }
}
