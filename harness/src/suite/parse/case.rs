//! Reading the top of a suite file and each case in it: their keys, the
//! defaults a case inherits from the suite (deadline, tolerance, sysctls,
//! program), case names (valid, unique), and the sysctl tables of both.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Reader;
use super::program::versions_of;
use super::raw::{RawTolerance, SysctlValue};
use crate::model::Side;
use crate::suite::action::values::DurationValue;
use crate::suite::limits::{MAX_CASES_PER_FILE, MAX_GENERATED_CASES};
use crate::suite::{
    Case, DEFAULT_DEADLINE, Location, Program, Scope, Script, Suite, Tolerance, Topology,
};

impl<'a> Reader<'a> {
    pub(super) fn suite(&mut self) -> Suite {
        let name = self
            .path
            .file_stem()
            .map_or_else(|| "suite".to_string(), |s| s.to_string_lossy().into_owned());
        let mut suite = Suite {
            name,
            path: self.path.to_path_buf(),
            description: None,
            cases: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            for err in errors {
                self.toml_problem(err, 0..0);
            }
            return suite;
        }
        let mut defaults = Defaults {
            deadline: DEFAULT_DEADLINE,
            tolerance: Tolerance::DEFAULT,
            sysctls: Vec::new(),
            program: None,
        };
        let (mut cases, mut sweeps) = (None, None);
        for (key, value) in root.get_ref() {
            match key.get_ref().as_ref() {
                "description" => suite.description = self.value(value),
                "deadline" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        defaults.deadline = d.0;
                    }
                }
                "tolerance" => {
                    if let Some(t) = self.table_value::<RawTolerance>(value, "in `tolerance`") {
                        defaults.tolerance = t.apply(Tolerance::DEFAULT);
                    }
                }
                "case" => cases = Some(value),
                "sweep" => sweeps = Some(value),
                "program" => {
                    defaults.program = self.program(value, true);
                    self.suite_program_refused = defaults.program.is_none();
                }
                "sysctl" => defaults.sysctls = self.sysctls(value),
                other => self.unknown_key(
                    key.span(),
                    other,
                    "at the top of a suite",
                    &[
                        "description",
                        "deadline",
                        "tolerance",
                        "sysctl",
                        "program",
                        "case",
                        "sweep",
                    ],
                ),
            }
        }
        let cases = self.tables(cases, "case");
        let sweeps = self.tables(sweeps, "sweep");
        let (Some(cases), Some(sweeps)) = (cases, sweeps) else {
            return suite;
        };
        if cases.is_empty() && sweeps.is_empty() {
            self.problem(
                0..0,
                "expected at least one `[[case]]` or `[[sweep]]` table, found none",
            );
            return suite;
        }
        // Counted before any is read; reported at the first case past
        // the limit.
        if let Some(first_past) = cases.get(MAX_CASES_PER_FILE) {
            self.problem(
                first_past.span(),
                format!(
                    "expected at most {MAX_CASES_PER_FILE} cases in a suite file, found {}: split it into several files",
                    cases.len()
                ),
            );
            return suite;
        }
        let mut names = BTreeMap::new();
        let made_by_cases = cases
            .iter()
            .filter_map(|item| Some((item, self.case(item, defaults.clone(), &mut names)?)));
        let made_by_cases: Vec<_> = made_by_cases
            .map(|(item, case)| (item, vec![case]))
            .collect();
        let made_by_sweeps: Vec<_> = sweeps
            .iter()
            .map(|item| (item, self.sweep(item, &defaults, &mut names)))
            .collect();
        for (item, made) in made_by_cases.into_iter().chain(made_by_sweeps) {
            let made: Vec<Case> = made.into_iter().flat_map(versions_of).collect();
            let before = suite.cases.len();
            if before + made.len() > MAX_GENERATED_CASES {
                self.problem(
                    item.span(),
                    format!(
                        "expected at most {MAX_GENERATED_CASES} cases made by a suite file (each version of a `compare` is a case, and each cell of a sweep), found {} by the end of this one: split it into several files",
                        before + made.len()
                    ),
                );
                return suite;
            }
            suite.cases.extend(made);
        }
        suite
    }

    /// `names` maps the case names seen so far to where each was written,
    /// so a duplicate is found even when either case has other errors.
    fn case(
        &mut self,
        item: &Spanned<DeValue<'a>>,
        defaults: Defaults,
        names: &mut BTreeMap<String, Location>,
    ) -> Option<Case> {
        let Some(table) = item.get_ref().as_table() else {
            self.problem(
                item.span(),
                format!("expected a case table, found {}", item.get_ref().type_str()),
            );
            return None;
        };
        let before = self.count;
        self.case_steps = 0;
        self.program_refused = self.suite_program_refused;
        let location = self.location(item.span().start);
        let mut case = Case {
            name: String::new(),
            description: None,
            location,
            ignore: None,
            deadline: defaults.deadline,
            sysctls: defaults.sysctls.clone(),
            tolerance: defaults.tolerance,
            scripts: Vec::new(),
            program: defaults.program.clone(),
            version: None,
            topology: Topology::Loopback,
            cell: None,
            trace: false,
        };
        let mut topology_key = None;
        // Where the `client` and `server` scripts are, for a program that
        // plays one of them.
        let mut side_keys = [None, None];
        // Where the case sets sysctls of its own, if it does.
        let mut own_sysctl = None;
        // `Some(None)`: a `name` is there but is not a string (already reported).
        let mut name = None;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "name" => name = Some(self.value::<Spanned<String>>(value)),
                "description" => case.description = self.value(value),
                "ignore" => case.ignore = self.value(value),
                "deadline" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        case.deadline = d.0;
                    }
                }
                "tolerance" => {
                    if let Some(t) = self.table_value::<RawTolerance>(value, "in `tolerance`") {
                        case.tolerance = t.apply(defaults.tolerance);
                    }
                }
                "sysctl" => {
                    own_sysctl = Some(key.span());
                    // The case's own values win over the suite's, key by key.
                    for (key, value) in self.sysctls(value) {
                        case.sysctls.retain(|(k, _)| *k != key);
                        case.sysctls.push((key, value));
                    }
                }
                "client" => {
                    side_keys[0] = Some(key.span());
                    case.scripts.push(Script {
                        side: Side::Client,
                        steps: self.steps(Side::Client, value, false),
                    })
                }
                "server" => {
                    side_keys[1] = Some(key.span());
                    case.scripts.push(Script {
                        side: Side::Server,
                        steps: self.steps(Side::Server, value, false),
                    })
                }
                "program" => {
                    case.program = self.program(value, false);
                    self.program_refused = case.program.is_none();
                }
                "topology" => {
                    topology_key = Some(value.span());
                    match value.get_ref().as_str() {
                        Some("loopback") => case.topology = Topology::Loopback,
                        Some("two_hosts") => case.topology = Topology::TwoHosts,
                        _ => self.problem(
                            value.span(),
                            "expected `topology` to be \"loopback\" (the default) or \"two_hosts\"",
                        ),
                    }
                }
                "proxy" => case.scripts.push(Script {
                    side: Side::Proxy,
                    steps: self.steps(Side::Proxy, value, false),
                }),
                other => self.unknown_key(
                    key.span(),
                    other,
                    "in a case",
                    &[
                        "name",
                        "description",
                        "ignore",
                        "deadline",
                        "tolerance",
                        "sysctl",
                        "topology",
                        "program",
                        "client",
                        "server",
                        "proxy",
                    ],
                ),
            }
        }
        case.scripts.sort_by_key(|s| s.side);
        if let (Topology::TwoHosts, Some(at)) = (case.topology, topology_key) {
            self.two_hosts(&mut case, at);
        }
        match name {
            Some(Some(name)) if valid_case_name(name.get_ref()) => {
                let at = self.location(name.span().start);
                if let Some(first) = names.get(name.get_ref()) {
                    self.problem(
                        name.span(),
                        format!(
                            "expected a case name unique in this suite, found `{}` again (first at line {}, column {}): test names must be unique",
                            name.get_ref(),
                            first.line,
                            first.column
                        ),
                    );
                } else {
                    names.insert(name.get_ref().clone(), at);
                }
                case.name = name.into_inner();
            }
            Some(None) => {}
            Some(Some(name)) => self.problem(
                name.span(),
                format!(
                    "expected a case name of letters, digits, `_` and `-`, found `{}`",
                    name.get_ref()
                ),
            ),
            None => self.problem(
                item.span().start..item.span().start,
                "expected a `name` for this case, found none",
            ),
        }
        if case.scripts.is_empty() {
            self.problem(
                item.span().start..item.span().start,
                "expected a `client`, `server` or `proxy` script in this case, found none",
            );
        }
        let role = case.program.as_ref().map(|p| p.role);
        let played = match role {
            Some(Side::Client) => side_keys[0].clone(),
            Some(_) => side_keys[1].clone(),
            None => None,
        };
        if let (Some(program), Some(at)) = (&case.program, played) {
            self.problem(
                at,
                format!(
                    "expected no `{0}` script in a case with a program (the program at line {1} plays the {0}), found one",
                    program.role, program.location.line
                ),
            );
        }
        if let (Some(program), Some(at)) = (case.program.as_ref(), own_sysctl) {
            if program.scope == Scope::Suite {
                self.problem(
                    at,
                    format!(
                        "expected no `sysctl` of its own in a case that shares the suite's program (`scope = \"suite\"` at line {}), found one: a sysctl applies to the whole namespace that program serves every case in; set it in the suite's `sysctl` table, or give this case a `program` of its own",
                        program.location.line
                    ),
                );
            }
        }
        self.across_scripts(&case.scripts, role);
        self.faults(&case);
        self.fault_limits(&case);
        if case.shares_program() {
            self.shared_program_steps(&case.scripts);
        }
        (self.count == before).then_some(case)
    }

    /// The tables of an array of tables (`[[case]]`, `[[sweep]]`): none
    /// when the file has no such key; `None` when it has one that is not
    /// such an array (reported).
    fn tables<'v>(
        &mut self,
        value: Option<&'v Spanned<DeValue<'a>>>,
        key: &str,
    ) -> Option<&'v [Spanned<DeValue<'a>>]> {
        let Some(value) = value else {
            return Some(&[]);
        };
        match value.get_ref().as_array() {
            Some(array) if !array.is_empty() => Some(array.as_ref()),
            Some(_) => {
                self.problem(
                    value.span(),
                    format!("expected at least one `[[{key}]]` table, found none"),
                );
                None
            }
            None => {
                self.problem(
                    value.span(),
                    format!(
                        "expected `{key}` to be an array of tables (`[[{key}]]`), found {}",
                        value.get_ref().type_str()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn sysctls(&mut self, value: &Spanned<DeValue<'a>>) -> Vec<(String, String)> {
        let Some(table) = value.get_ref().as_table() else {
            self.problem(value.span(), format!("expected a table of sysctls like `{{ \"net.ipv4.tcp_fin_timeout\" = 5 }}`, found {}", value.get_ref().type_str()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, v) in table {
            let name = key.get_ref().to_string();
            if let Err(why) = crate::sandbox::validate_sysctl_key(&name) {
                self.problem(key.span(), why);
                continue;
            }
            if let Some(SysctlValue(text)) = self.value(v) {
                match crate::sandbox::validate_sysctl_value(&text) {
                    Ok(()) => out.push((name, text)),
                    Err(why) => self.problem(v.span(), why),
                }
            }
        }
        out
    }
}

#[derive(Clone)]
pub(super) struct Defaults {
    pub(super) deadline: Duration,
    pub(super) tolerance: Tolerance,
    /// The suite's `sysctl` table, every case's unless it sets a key itself.
    pub(super) sysctls: Vec<(String, String)>,
    /// The suite's `[program]`, every case's unless it names its own.
    pub(super) program: Option<Program>,
}

pub(super) fn valid_case_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
