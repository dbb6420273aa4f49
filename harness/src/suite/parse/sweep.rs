//! Reading a `[[sweep]]` table and making its cells: one case per (phase,
//! kind), each an ordinary case from here on (see [`crate::suite::sweep`]).
//!
//! The steps a cell's phase and kind make are suite text, read by a
//! reader of their own; they point at the phase or kind in the file that
//! made them, so a problem in one (a request too long for `send`, a fault
//! a suite-scoped program cannot take) is reported there.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Reader;
use super::case::{Defaults, valid_case_name};
use crate::model::Errno;
use crate::model::Side;
use crate::suite::action::values::{DurationValue, errno_list};
use crate::suite::limits::MAX_GENERATED_CASES;
use crate::suite::sweep::{Cell, Kind, Phase, Serving, SweepPlan};
use crate::suite::{Case, Location, Scope, Script, Step, Topology};

/// How long a kind waits unless the sweep says (`hold`).
const DEFAULT_HOLD: Duration = Duration::from_millis(300);
/// How long a phase's read waits for the response unless the sweep says
/// (`wait`).
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The keys a `[[sweep]]` table takes.
const SWEEP_KEYS: &[&str] = &[
    "name",
    "description",
    "request",
    "phases",
    "kinds",
    "hold",
    "wait",
    "keep",
    "errnos",
    "serving",
    "trace",
    "deadline",
    "sysctl",
];

/// A sweep as read, before its cells are made.
struct Read {
    name: Option<Spanned<String>>,
    description: Option<String>,
    request: Option<String>,
    phases: Vec<(Phase, Range<usize>)>,
    kinds: Vec<(Kind, Range<usize>)>,
    hold: Duration,
    wait: Duration,
    keep: Vec<Step>,
    /// The errnos the program's calls on a cell's connection may fail
    /// with, and where the sweep says so.
    errnos: Option<(Vec<Errno>, Range<usize>)>,
    serving: Option<Serving>,
    deadline: Duration,
    sysctls: Vec<(String, String)>,
    trace: bool,
}

impl<'a> Reader<'a> {
    /// The cells of one `[[sweep]]` table, each a case (before versions).
    pub(super) fn sweep(
        &mut self,
        item: &Spanned<DeValue<'a>>,
        defaults: &Defaults,
        names: &mut BTreeMap<String, Location>,
    ) -> Vec<Case> {
        let Some(table) = item.get_ref().as_table() else {
            self.problem(
                item.span(),
                format!(
                    "expected a sweep table, found {}",
                    item.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        let before = self.count;
        let at = item.span().start..item.span().start;
        let read = self.sweep_keys(table, defaults, at.clone());
        let Some(program) = defaults.program.clone() else {
            if self.suite_program_refused {
                // Reported where the `[program]` is written.
                return Vec::new();
            }
            self.problem(
                at,
                "expected a `[program]` for this sweep, found none: a sweep hangs up on a program under test, which plays the server",
            );
            return Vec::new();
        };
        if program.role != Side::Server {
            self.problem(
                at,
                "expected the program to play the server in a sweep, found it playing the client",
            );
            return Vec::new();
        }
        let (Some(name), Some(request)) = (read.name.clone(), read.request.clone()) else {
            if read.name.is_none() {
                self.problem(at.clone(), "expected a `name` for this sweep, found none");
            }
            if read.request.is_none() {
                self.problem(
                    at,
                    "expected a `request` for this sweep (the text the client sends), found none",
                );
            }
            return Vec::new();
        };
        if !valid_case_name(name.get_ref()) {
            self.problem(
                name.span(),
                format!(
                    "expected a sweep name of letters, digits, `_` and `-`, found `{}`",
                    name.get_ref()
                ),
            );
        }
        if self.count > before {
            return Vec::new();
        }
        let plan = SweepPlan {
            port: program.port,
            request,
            hold: read.hold,
            wait: read.wait,
            serving: read.serving.clone(),
            errnos: read.errnos.as_ref().map(|(errnos, _)| errnos.clone()),
        };
        let location = self.location(item.span().start);
        let mut cells = Vec::new();
        for (phase, phase_at) in &read.phases {
            for (kind, kind_at) in &read.kinds {
                if !phase.takes(*kind) {
                    continue;
                }
                let cell = Cell {
                    sweep: name.get_ref().clone(),
                    phase: phase.clone(),
                    kind: *kind,
                };
                let case_name = cell.case_name();
                if let Some(first) = names.get(&case_name) {
                    self.problem(
                        phase_at.clone(),
                        format!(
                            "expected each cell of a sweep once, found `{case_name}` again (first at line {}, column {}): test names must be unique",
                            first.line, first.column
                        ),
                    );
                    continue;
                }
                names.insert(case_name.clone(), self.location(phase_at.start));
                let own = phase.needs_own_program() || kind.needs_own_program();
                let mut program = program.clone();
                if own {
                    program.scope = Scope::Case;
                }
                let shares = program.scope == Scope::Suite;
                let mut sysctls = defaults.sysctls.clone();
                if !shares {
                    for (key, value) in &read.sysctls {
                        sysctls.retain(|(k, _)| k != key);
                        sysctls.push((key.clone(), value.clone()));
                    }
                }
                let steps_before = self.count;
                let mut text = String::new();
                phase.prefix(&plan, *kind, &mut text);
                let mut steps = self.generated(&text, &case_name, phase_at.clone());
                text.clear();
                kind.steps(&plan, phase, &mut text);
                phase.suffix(&mut text);
                steps.extend(self.generated(&text, &case_name, kind_at.clone()));
                steps.extend(read.keep.iter().cloned());
                if let Some((_, errnos_at)) = &read.errnos {
                    text.clear();
                    plan.errnos_step(&mut text);
                    steps.extend(self.generated(&text, &case_name, errnos_at.clone()));
                }
                text.clear();
                let faulted = kind.leaves_a_fault(phase);
                if !phase.stops_the_program() {
                    plan.serving_steps(faulted, &mut text);
                }
                steps.extend(self.generated(&text, &case_name, kind_at.clone()));
                if self.count > steps_before {
                    continue;
                }
                let case = Case {
                    name: case_name,
                    description: read.description.clone(),
                    location: location.clone(),
                    ignore: None,
                    deadline: read.deadline,
                    sysctls,
                    tolerance: defaults.tolerance,
                    scripts: vec![Script {
                        side: Side::Client,
                        steps,
                    }],
                    program: Some(program),
                    version: None,
                    topology: Topology::Loopback,
                    cell: Some(cell),
                    trace: read.trace,
                };
                let checked = self.count;
                self.across_scripts(&case.scripts, Some(Side::Server));
                self.faults(&case);
                self.fault_limits(&case);
                if case.shares_program() {
                    self.shared_program_steps(&case.scripts);
                }
                if self.count == checked {
                    cells.push(case);
                }
            }
        }
        if cells.is_empty() && self.count == before {
            self.problem(
                item.span().start..item.span().start,
                "expected at least one cell in this sweep, found none: no kind in `kinds` applies to a phase in `phases`",
            );
        }
        cells
    }

    /// Reads the keys of a `[[sweep]]` table, each on its own.
    fn sweep_keys(&mut self, table: &DeTable<'a>, defaults: &Defaults, at: Range<usize>) -> Read {
        let mut read = Read {
            name: None,
            description: None,
            request: None,
            phases: Vec::new(),
            kinds: Vec::new(),
            hold: DEFAULT_HOLD,
            wait: DEFAULT_WAIT,
            keep: Vec::new(),
            errnos: None,
            serving: None,
            deadline: defaults.deadline,
            sysctls: Vec::new(),
            trace: true,
        };
        let (mut phases, mut kinds) = (false, false);
        let mut untraced = None;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "name" => read.name = self.value(value),
                "description" => read.description = self.value(value),
                "request" => {
                    read.request = self.value::<String>(value);
                    if read.request.as_deref() == Some("") {
                        self.problem(
                            value.span(),
                            "expected a `request` of at least one byte, found an empty one",
                        );
                    }
                }
                "phases" => {
                    phases = true;
                    read.phases = self.phases(value, &table_request(table));
                }
                "kinds" => {
                    kinds = true;
                    read.kinds = self.kinds(value);
                }
                "hold" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        read.hold = d.0;
                    }
                }
                "wait" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        read.wait = d.0;
                    }
                }
                "deadline" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        read.deadline = d.0;
                    }
                }
                "keep" => {
                    self.case_steps = 0;
                    read.keep = self.steps(Side::Client, value, false);
                }
                "errnos" => {
                    let errnos = errno_list(value, |at, why| self.problem(at, why));
                    read.errnos = errnos.map(|errnos| (errnos, value.span()));
                }
                "serving" => read.serving = self.serving(value),
                "trace" => {
                    read.trace = self.value(value).unwrap_or(true);
                    if !read.trace {
                        untraced = Some(self.location(value.span().start));
                    }
                }
                "sysctl" => read.sysctls = self.sysctls(value),
                other => self.unknown_key(key.span(), other, "in a sweep", SWEEP_KEYS),
            }
        }
        if let (Some((_, at)), Some(trace)) = (&read.errnos, untraced) {
            self.problem(
                at.clone(),
                format!(
                    "expected `errnos` in a sweep whose program is traced, found `trace = false` (line {}, column {}): which errnos its calls failed with is what the tracing of its socket calls sees",
                    trace.line, trace.column
                ),
            );
        }
        if !phases {
            self.problem(
                at.clone(),
                "expected `phases` in this sweep (where the client hangs up), found none",
            );
        }
        if !kinds {
            self.problem(
                at,
                "expected `kinds` in this sweep (how the client hangs up), found none",
            );
        }
        read
    }

    /// `phases = ["connected", { request_bytes = [1, 5] }, ...]`.
    fn phases(
        &mut self,
        value: &Spanned<DeValue<'a>>,
        request: &Option<String>,
    ) -> Vec<(Phase, Range<usize>)> {
        let named: Vec<String> = Phase::NAMED
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .chain([
                "{ request_bytes = [...] }".into(),
                "{ response_bytes = [...] }".into(),
                "{ chunks = N }".into(),
                "{ body_bytes = [...] }".into(),
                "{ body_bytes = { count = N, of = BYTES } }".into(),
            ])
            .collect();
        let expected = format!("expected a phase: one of {}", named.join(", "));
        let Some(array) = value.get_ref().as_array().filter(|a| !a.is_empty()) else {
            self.problem(
                value.span(),
                format!(
                    "expected `phases` to be a list of phases, found {}",
                    describe(value)
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in array.iter() {
            match item.get_ref() {
                DeValue::String(name) => match Phase::NAMED.iter().find(|(n, _)| n == name) {
                    Some((_, phase)) => out.push((phase.clone(), item.span())),
                    None => self.problem(item.span(), format!("{expected}, found \"{name}\"")),
                },
                DeValue::Table(table) if table.len() == 1 => {
                    let Some((key, counts)) = table.iter().next() else {
                        continue;
                    };
                    match key.get_ref().as_ref() {
                        "request_bytes" => {
                            let Some(request) = request else {
                                // The missing request is reported on its own.
                                continue;
                            };
                            for (n, at) in self.byte_counts(counts, Some(request)) {
                                out.push((Phase::RequestBytes(n), at));
                            }
                        }
                        "response_bytes" => {
                            for (n, at) in self.byte_counts(counts, None) {
                                out.push((Phase::ResponseBytes(n), at));
                            }
                        }
                        "chunks" => {
                            for (n, at) in self.chunks(counts) {
                                out.push((Phase::Chunk(n), at));
                            }
                        }
                        "body_bytes" => {
                            let offsets = match counts.get_ref() {
                                DeValue::Table(spaced) => self.evenly_spaced(spaced, counts.span()),
                                _ => self.byte_counts(counts, None),
                            };
                            for (n, at) in offsets {
                                out.push((Phase::BodyBytes(n), at));
                            }
                        }
                        other => self.problem(key.span(), format!("{expected}, found `{other}`")),
                    }
                }
                _ => self.problem(item.span(), format!("{expected}, found {}", describe(item))),
            }
        }
        out
    }

    /// A list of byte counts, each at least 1; for the request, each below
    /// its length and at a character's boundary (`send` sends text), or
    /// `"every"`: every such count.
    fn byte_counts(
        &mut self,
        value: &Spanned<DeValue<'a>>,
        request: Option<&String>,
    ) -> Vec<(u64, Range<usize>)> {
        if let (DeValue::String(word), Some(request)) = (value.get_ref(), request) {
            if word == "every" {
                return (1..request.len())
                    .filter(|&n| request.is_char_boundary(n))
                    .map(|n| (n as u64, value.span()))
                    .collect();
            }
        }
        let every = if request.is_some() {
            ", or \"every\""
        } else {
            ""
        };
        let Some(array) = value.get_ref().as_array().filter(|a| !a.is_empty()) else {
            self.problem(
                value.span(),
                format!(
                    "expected a list of byte counts{every}, found {}",
                    describe(value)
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in array.iter() {
            let Some(n) = self.value::<u64>(item) else {
                continue;
            };
            if n == 0 {
                self.problem(item.span(), "expected a byte count of at least 1, found 0 (`connected` is the phase before any byte)");
                continue;
            }
            if let Some(request) = request {
                let cut = usize::try_from(n).unwrap_or(usize::MAX);
                if cut >= request.len() {
                    self.problem(
                        item.span(),
                        format!(
                            "expected a byte count below the request's {} bytes, found {n} (`request_sent` is the phase after all of it)",
                            request.len()
                        ),
                    );
                    continue;
                }
                if !request.is_char_boundary(cut) {
                    self.problem(
                        item.span(),
                        format!("expected a byte count at the end of a character of the request, found {n}, which cuts one in two: the request is sent as text"),
                    );
                    continue;
                }
            }
            out.push((n, item.span()));
        }
        out
    }

    /// `{ chunks = N }`: one phase per chunk, 1 to N; N at least 1 and at
    /// most the cases a file may make (each is a row of cells).
    fn chunks(&mut self, value: &Spanned<DeValue<'a>>) -> Vec<(u64, Range<usize>)> {
        let Some(n) = self.value::<u64>(value) else {
            return Vec::new();
        };
        if n == 0 {
            self.problem(
                value.span(),
                "expected `chunks` of at least 1 (a phase after each of the first N chunks), found 0",
            );
            return Vec::new();
        }
        if n > MAX_GENERATED_CASES as u64 {
            self.problem(
                value.span(),
                format!(
                    "expected `chunks` of at most {MAX_GENERATED_CASES} (the cases a file may make), found {n}"
                ),
            );
            return Vec::new();
        }
        (1..=n).map(|k| (k, value.span())).collect()
    }

    /// `{ count = 4, of = 4000 }`: `count` body offsets evenly spaced up
    /// to `of`, the i-th `of * i / count` rounded down (1000, 2000, 3000,
    /// 4000); `count` at least 1, at most `of` (so that no two are the
    /// same and none is 0) and at most the cases a file may make.
    fn evenly_spaced(&mut self, table: &DeTable<'a>, at: Range<usize>) -> Vec<(u64, Range<usize>)> {
        let (mut count, mut of) = (None, None);
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "count" => count = self.value::<u64>(v).map(|n| (n, v.span())),
                "of" => of = self.value::<u64>(v).map(|n| (n, v.span())),
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` in evenly spaced `body_bytes`, expected `count` and `of`"),
                ),
            }
        }
        let (Some((count, count_at)), Some((of, of_at))) = (count, of) else {
            self.problem(
                at,
                "expected `body_bytes = { count = N, of = BYTES }` (N offsets evenly spaced up to BYTES of body) with both keys",
            );
            return Vec::new();
        };
        if count == 0 {
            self.problem(count_at, "expected `count` of at least 1, found 0");
            return Vec::new();
        }
        if count > MAX_GENERATED_CASES as u64 {
            self.problem(
                count_at,
                format!(
                    "expected `count` of at most {MAX_GENERATED_CASES} (the cases a file may make), found {count}"
                ),
            );
            return Vec::new();
        }
        if count > of {
            self.problem(
                of_at,
                format!("expected `of` of at least `count` ({count}) bytes, so that each offset is a byte further, found {of}"),
            );
            return Vec::new();
        }
        (1..=count)
            .map(|i| {
                let offset = u128::from(of) * u128::from(i) / u128::from(count);
                (u64::try_from(offset).unwrap_or(of), at.clone())
            })
            .collect()
    }

    /// `kinds = ["close", "abort", ...]`, or `"all"`.
    fn kinds(&mut self, value: &Spanned<DeValue<'a>>) -> Vec<(Kind, Range<usize>)> {
        let names: Vec<String> = Kind::ALL
            .iter()
            .map(|k| format!("\"{}\"", k.name()))
            .collect();
        let expected = format!("expected a kind of hang-up: one of {}", names.join(", "));
        if let DeValue::String(word) = value.get_ref() {
            if word == "all" {
                return Kind::ALL.iter().map(|k| (*k, value.span())).collect();
            }
        }
        let Some(array) = value.get_ref().as_array().filter(|a| !a.is_empty()) else {
            self.problem(
                value.span(),
                format!(
                    "expected `kinds` to be a list of kinds, or \"all\", found {}",
                    describe(value)
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<(Kind, Range<usize>)> = Vec::new();
        for item in array.iter() {
            match item.get_ref().as_str().and_then(Kind::named) {
                Some(kind) if out.iter().any(|(k, _)| *k == kind) => self.problem(
                    item.span(),
                    format!("expected each kind once, found \"{}\" again", kind.name()),
                ),
                Some(kind) => out.push((kind, item.span())),
                None => self.problem(item.span(), format!("{expected}, found {}", describe(item))),
            }
        }
        out
    }

    /// `serving = { until = 5000, matches = "^chunk", within = "5s" }`.
    fn serving(&mut self, value: &Spanned<DeValue<'a>>) -> Option<Serving> {
        let Some(table) = value.get_ref().as_table() else {
            self.problem(
                value.span(),
                format!(
                    "expected `serving` to be a table like `{{ until = 5000, within = \"5s\" }}`, found {}",
                    value.get_ref().type_str()
                ),
            );
            return None;
        };
        let mut serving = Serving {
            until: String::new(),
            matches: None,
            within: DEFAULT_WAIT,
        };
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "until" => match v.get_ref() {
                    DeValue::Integer(_) => {
                        if let Some(n) = self.value::<u64>(v).filter(|n| *n > 0) {
                            serving.until = n.to_string();
                        } else {
                            self.problem(v.span(), "expected `until` to be a byte count of at least 1 or text");
                        }
                    }
                    DeValue::String(text) if !text.is_empty() => {
                        serving.until = crate::suite::sweep::quoted(text);
                    }
                    _ => self.problem(
                        v.span(),
                        format!(
                            "expected `until` to be a byte count or text (where the response ends, as `recv_until` takes it), found {}",
                            describe(v)
                        ),
                    ),
                },
                "matches" => {
                    if let Some(pattern) = self.value::<String>(v) {
                        serving.matches = Some(crate::suite::sweep::quoted(&pattern));
                    }
                }
                "within" => {
                    if let Some(d) = self.value::<DurationValue>(v) {
                        serving.within = d.0;
                    }
                }
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` in `serving`, expected one of `until`, `matches`, `within`"),
                ),
            }
        }
        if serving.until.is_empty() {
            self.problem(
                value.span(),
                "expected `until` in `serving` (where the fresh response ends: a byte count or text), found none",
            );
            return None;
        }
        Some(serving)
    }

    /// Reads steps a sweep made (`text`, suite text) for cell `cell`, each
    /// pointing at `at`, the phase or kind in the file that made it.
    fn generated(&mut self, text: &str, cell: &str, at: Range<usize>) -> Vec<Step> {
        if text.is_empty() {
            return Vec::new();
        }
        let source = format!("steps = [\n{text}]\n");
        let mut inner = Reader::new(self.path, &source);
        let steps = match DeTable::parse(&source) {
            Ok(table) => match table.get_ref().get("steps") {
                Some(value) => inner.steps(Side::Client, value, false),
                None => Vec::new(),
            },
            Err(err) => {
                inner.toml_problem(err, 0..0);
                Vec::new()
            }
        };
        for (_, message) in std::mem::take(&mut inner.problems) {
            self.problem(
                at.clone(),
                format!("in the steps this sweep makes for cell `{cell}`: {message}"),
            );
        }
        let location = self.location(at.start);
        steps
            .into_iter()
            .map(|mut step| {
                step.location = location.clone();
                step.span = at.clone();
                step
            })
            .collect()
    }
}

/// The sweep's `request`, read ahead for the phases that cut it.
fn table_request(table: &DeTable<'_>) -> Option<String> {
    table
        .get("request")
        .and_then(|v| v.get_ref().as_str())
        .map(str::to_string)
}

/// What a value is, for "found ...": its text when short, its type else.
fn describe(value: &Spanned<DeValue<'_>>) -> String {
    match value.get_ref() {
        DeValue::String(s) => format!("\"{s}\""),
        other => other.type_str().to_string(),
    }
}
