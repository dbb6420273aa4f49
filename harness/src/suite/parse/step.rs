//! Reading one step: its action and modifiers, each read by its own
//! definition ([`crate::suite::action`]), and what the action's definition
//! allows of them. Nothing here knows any one action: a new action is a
//! definition, not a change here.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::Reader;
use crate::model::nearest::nearest;
use crate::model::{Link, Side};
use crate::suite::action::values::outcomes;
use crate::suite::action::{
    self, ActionDef, Build, JUDGING, MODIFIERS, ModValue, Modifiers, StepReader,
};
use crate::suite::limits::MAX_STEPS_PER_CASE;
use crate::suite::{Action, Control, Expect, Pattern, Step};

impl<'a> StepReader<'a> for Reader<'a> {
    fn problem(&mut self, span: Range<usize>, message: String) {
        Reader::problem(self, span, message);
    }

    fn toml_problem(&mut self, err: toml::de::Error, fallback: Range<usize>) {
        Reader::toml_problem(self, err, fallback);
    }

    fn steps(&mut self, side: Side, value: &Spanned<DeValue<'a>>) -> Vec<Step> {
        Reader::steps(self, side, value, true)
    }
}

/// A step's action as written: its definition, its value, where that is
/// (what its problems point at; for a bare step, the whole step), and
/// where its key is.
struct Written<'a> {
    def: &'static ActionDef,
    value: Spanned<DeValue<'a>>,
    at: Range<usize>,
    key: Range<usize>,
}

impl<'a> Reader<'a> {
    /// The steps of one script (or of a loop's body, with `in_loop`).
    pub(super) fn steps(
        &mut self,
        side: Side,
        value: &Spanned<DeValue<'a>>,
        in_loop: bool,
    ) -> Vec<Step> {
        let what = if in_loop {
            "`loop`".to_string()
        } else {
            format!("`{side}`")
        };
        let Some(array) = value.get_ref().as_array() else {
            self.problem(
                value.span(),
                format!(
                    "expected {what} to be an array of steps, found {}",
                    value.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        // An empty script would pass the "a client or a server" check of
        // `Reader::case` while doing nothing.
        if array.is_empty() {
            self.problem(
                value.span(),
                format!("expected at least one step in {what}, found none"),
            );
        }
        // Counted before any is read, so a huge script is refused without
        // building its steps, and reported once: at the step that passes
        // the limit.
        let before = self.case_steps;
        self.case_steps = before.saturating_add(array.len());
        if self.case_steps > MAX_STEPS_PER_CASE {
            if let Some(first_past) = MAX_STEPS_PER_CASE
                .checked_sub(before)
                .and_then(|i| array.get(i))
            {
                self.problem(
                    first_past.span(),
                    format!(
                        "expected at most {MAX_STEPS_PER_CASE} steps in a case (the steps inside loops included), found {} by the end of {what}",
                        self.case_steps
                    ),
                );
            }
            return Vec::new();
        }
        let mut steps = Vec::new();
        for item in array.iter() {
            if let Some(step) = self.step(side, item, in_loop) {
                steps.push(step);
            }
        }
        steps
    }

    /// Reads one step. Every key is read on its own, so that a typo in one
    /// does not hide a bad value in the next; when some fail and no action
    /// is there, nothing is left to check the others against.
    fn step(&mut self, side: Side, item: &Spanned<DeValue<'a>>, in_loop: bool) -> Option<Step> {
        let span = item.span();
        let before = self.count;
        let mut modifiers = Modifiers::new();
        let written = match item.get_ref() {
            DeValue::String(name) => self.bare(name, span.clone())?,
            DeValue::Table(table) => {
                let mut actions: Vec<Written<'a>> = Vec::new();
                for (key, value) in table {
                    let name = key.get_ref().as_ref();
                    if let Some(def) = action::definition(name) {
                        actions.push(Written {
                            def,
                            value: value.clone(),
                            at: value.span(),
                            key: key.span(),
                        });
                    } else if let Some(modifier) = action::modifier(name) {
                        let read = match (modifier.read)(value) {
                            Ok(read) => Some(read),
                            Err(err) => {
                                self.toml_problem(err, value.span());
                                None
                            }
                        };
                        modifiers.insert(modifier.keyword, (read, value.span()));
                    } else {
                        self.problem(key.span(), unknown_key(name));
                    }
                }
                match actions.len() {
                    1 => actions.remove(0),
                    0 if self.count > before => return None,
                    0 => {
                        let names: Vec<&str> = action::catalog().map(|d| d.keyword).collect();
                        self.problem(
                            span,
                            format!(
                                "expected one action in this step, found none; actions are {}",
                                names.join(", ")
                            ),
                        );
                        return None;
                    }
                    _ => {
                        // Name them in file order and point at the key of
                        // the second, the one to remove.
                        actions.sort_by_key(|a| a.key.start);
                        let names: Vec<String> = actions
                            .iter()
                            .map(|a| format!("`{}`", a.def.keyword))
                            .collect();
                        self.problem(
                            actions[1].key.clone(),
                            format!(
                                "expected one action per step, found {}",
                                names.join(" and ")
                            ),
                        );
                        return None;
                    }
                }
            }
            _ => {
                // Not a step at all: the same words as a string that is not
                // a bare action, with what it is instead.
                self.problem(
                    span,
                    format!(
                        "expected a step: a table like `{{ connect = 8080 }}`, or the name of an action without arguments ({}), found {}",
                        bare_actions().join(", "),
                        item.get_ref().type_str()
                    ),
                );
                return None;
            }
        };
        let Written { def, value, at, .. } = written;
        let mut build = Build {
            reader: self,
            def,
            side,
            value,
            at: at.clone(),
            modifiers: &modifiers,
        };
        let action = (def.build)(&mut build)?;
        self.modifiers_apply(def, &modifiers, &at);
        let link = self.link(side, def, &modifiers, &at);
        if !def.sides.contains(&side) {
            self.problem(
                at.clone(),
                format!(
                    "`{}` is for {}, found it in the {side} script",
                    def.keyword,
                    def.sides_in_words()
                ),
            );
        }
        if in_loop && matches!(action, Action::Control(Control::Loop(_))) {
            self.problem(
                at.clone(),
                "expected a step, found a `loop` inside a `loop`: loops do not nest",
            );
        }
        let expect = self.expectation(def, &action, &modifiers);
        (self.count == before).then(|| Step {
            action,
            expect,
            location: self.location(span.start),
            source: self.text[span.clone()].to_string(),
            span,
            link,
        })
    }

    /// A bare step, `"close"`: an action without arguments, as if written
    /// `{ close = true }`.
    fn bare(&mut self, name: &str, span: Range<usize>) -> Option<Written<'a>> {
        match action::definition(name).filter(|def| def.bare) {
            Some(def) => Some(Written {
                def,
                value: Spanned::new(span.clone(), DeValue::Boolean(true)),
                at: span.clone(),
                key: span,
            }),
            None => {
                let names = bare_actions();
                let words = match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => names.join(""),
                };
                let bare = action::catalog().filter(|d| d.bare).map(|d| d.keyword);
                let takes_argument = if action::definition(name).is_some() {
                    " (it takes an argument: write it as a table)".to_string()
                } else if let Some(meant) = nearest(name, bare) {
                    format!(" (did you mean \"{meant}\"?)")
                } else {
                    String::new()
                };
                self.problem(
                    span,
                    format!("expected {words} as a bare step, found \"{name}\"{takes_argument}"),
                );
                None
            }
        }
    }

    /// Reports each modifier the step holds that its action does not take,
    /// and each it requires that the step leaves out. The judging
    /// modifiers and `on` have messages of their own.
    fn modifiers_apply(&mut self, def: &ActionDef, modifiers: &Modifiers, at: &Range<usize>) {
        let keyword = def.keyword;
        let takes: Vec<String> = def
            .modifiers
            .iter()
            .map(|m| m.keyword)
            .chain(if def.judged { JUDGING } else { &[] }.iter().copied())
            .map(|m| format!("`{m}`"))
            .collect();
        let hint = if takes.is_empty() {
            ", which takes no other key".to_string()
        } else {
            format!(", expected one of {}", takes.join(", "))
        };
        for (name, (_, span)) in modifiers {
            if !def.takes(name) && !JUDGING.contains(name) && *name != "on" {
                self.problem(
                    span.clone(),
                    format!("`{name}` does not apply to `{keyword}`{hint}"),
                );
            }
        }
        for uses in def.modifiers {
            if let (Some(why), false) = (uses.required, modifiers.contains_key(uses.keyword)) {
                self.problem(
                    at.clone(),
                    format!(
                        "expected `{}` with `{keyword}`{why}, found none",
                        uses.keyword
                    ),
                );
            }
        }
    }

    /// Which connection a step acts on. The client and server have one
    /// each; the proxy has two, so its steps on a connection must say which
    /// with `on = "client"` (the one it accepted) or `on = "server"`.
    fn link(
        &mut self,
        side: Side,
        def: &ActionDef,
        modifiers: &Modifiers,
        at: &Range<usize>,
    ) -> Link {
        let keyword = def.keyword;
        let on = modifiers.get("on").map(|(value, span)| {
            let link = match value {
                Some(ModValue::Link(link)) => Some(*link),
                _ => None,
            };
            (link, span.clone())
        });
        match (side, on) {
            (Side::Client, None) => Link::Connected,
            (Side::Server, None) => Link::Accepted,
            (Side::Client | Side::Server, Some((_, span))) => {
                self.problem(
                    span,
                    format!("`on` is for the proxy's steps: the {side} has one connection"),
                );
                if side == Side::Client {
                    Link::Connected
                } else {
                    Link::Accepted
                }
            }
            (Side::Proxy, Some((link, _))) if def.on_connection => link.unwrap_or(Link::Accepted),
            (Side::Proxy, Some((_, span))) => {
                self.problem(
                    span,
                    format!("`on` does not apply to `{keyword}`: it acts on no connection"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) if def.on_connection => {
                self.problem(
                    at.clone(),
                    format!("expected `on = \"client\"` or `on = \"server\"` with `{keyword}`: the proxy holds two connections"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) => match def.keyword {
                "connect" => Link::Connected,
                _ => Link::Accepted,
            },
        }
    }

    /// What the step's result must be, from the judging modifiers (and, for
    /// the actions that take them, `revents` and `matches`); `None` when it
    /// says nothing (the action's default expectation holds).
    fn expectation(
        &mut self,
        def: &'static ActionDef,
        action: &Action,
        modifiers: &Modifiers,
    ) -> Option<Expect> {
        let keyword = def.keyword;
        if !def.judged {
            for name in JUDGING {
                // `syscall` takes `expect` as its own: the outcomes it counts.
                if def.takes(name) {
                    continue;
                }
                if let Some((_, span)) = modifiers.get(name) {
                    self.problem(
                        span.clone(),
                        format!(
                            "`{name}` does not apply to `{keyword}`: it has no result to judge"
                        ),
                    );
                }
            }
            return None;
        }
        let get = |name: &str| {
            modifiers
                .get(name)
                .filter(|_| JUDGING.contains(&name) || def.takes(name))
                .and_then(|(value, _)| value.as_ref())
        };
        let revents = match get("revents") {
            Some(ModValue::Events(events)) => Some(*events),
            _ => None,
        };
        let matches = match get("matches") {
            Some(ModValue::Pattern(pattern)) => Some(Pattern(pattern.clone())),
            _ => None,
        };
        let written = |name: &str| modifiers.contains_key(name);
        if !written("expect")
            && !written("bytes")
            && !written("after")
            && !written("longer_than")
            && revents.is_none()
            && matches.is_none()
        {
            return None;
        }
        let mut out = action.default_expectation();
        if let Some(ModValue::Outcomes(expect, span)) = get("expect").cloned() {
            out.result = outcomes(expect, span, |at, why| self.problem(at, why));
        }
        out.bytes = match get("bytes") {
            Some(ModValue::Number(n)) => Some(*n),
            _ => None,
        };
        out.after = match get("after") {
            Some(ModValue::Duration(d)) => Some(*d),
            _ => None,
        };
        out.longer_than = match get("longer_than") {
            Some(ModValue::Duration(d)) => Some(*d),
            _ => None,
        };
        out.revents = revents;
        out.matches = matches;
        Some(out)
    }
}

/// The actions that may be written as a bare string, quoted.
fn bare_actions() -> Vec<String> {
    action::catalog()
        .filter(|d| d.bare)
        .map(|d| format!("\"{}\"", d.keyword))
        .collect()
}

/// A key that is neither an action nor a modifier: the one meant, when it
/// is near one, else every key there is.
fn unknown_key(name: &str) -> String {
    let known = || {
        action::catalog()
            .map(|d| d.keyword)
            .chain(MODIFIERS.iter().map(|m| m.keyword))
    };
    if let Some(meant) = nearest(name, known()) {
        return format!("unknown field `{name}`: did you mean `{meant}`?");
    }
    let keys: Vec<String> = known().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{name}`, expected one of {}",
        keys.join(", ")
    )
}
