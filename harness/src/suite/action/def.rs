//! What an action's one definition holds, and what its construction from
//! TOML is handed.
//!
//! An [`ActionDef`] is everything about one action: its keyword, how the
//! README writes it and what it does, which sides may take it, whether it
//! acts on a connection and has a result to judge, the modifiers it takes
//! (with their defaults, or that one is required), the JSON Schema of its
//! value, how it is built from TOML ([`Build`]), and how the timeline
//! names it. The parser, `hangup check`'s messages, the JSON Schema and the
//! README's tables all read these, so an action is one definition (in
//! `calls`, `control` or `checks`) plus its execution in the runner.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

use super::modifiers::ModValue;
use super::values::outcomes;
use super::{Action, Step};
use crate::model::{Outcome, Side};

/// Which kind of step an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A socket call.
    Socket,
    /// Pacing and coordination.
    Control,
    /// A look at the kernel's state.
    Check,
}

/// A modifier an action takes, and what it is when the step leaves it
/// out.
#[derive(Debug, Clone, Copy)]
pub struct Uses {
    /// The modifier's key.
    pub keyword: &'static str,
    /// Its value when not written, as a suite would write it (`"65536"`):
    /// the build reads it through [`Build::number_or_default`] and the
    /// like, and the README says it.
    pub default: Option<&'static str>,
    /// Whether the step must write it; then what the message adds to
    /// "expected `times` with `loop`", e.g. ": every loop is bounded".
    pub required: Option<&'static str>,
}

impl Uses {
    /// Taken, with no default.
    pub const fn key(keyword: &'static str) -> Uses {
        Uses {
            keyword,
            default: None,
            required: None,
        }
    }

    /// Taken, `default` when left out.
    pub const fn or(keyword: &'static str, default: &'static str) -> Uses {
        Uses {
            keyword,
            default: Some(default),
            required: None,
        }
    }

    /// Required; `why` ends the message when it is left out.
    pub const fn required(keyword: &'static str, why: &'static str) -> Uses {
        Uses {
            keyword,
            default: None,
            required: Some(why),
        }
    }
}

/// The one definition of an action (see the module docs).
pub struct ActionDef {
    /// The key it is written with.
    pub keyword: &'static str,
    /// Which kind of step it is.
    pub kind: StepKind,
    /// How it is written, for the README's step table.
    pub written: &'static str,
    /// What it does, in a line (README and schema).
    pub summary: &'static str,
    /// Which sides may use it.
    pub sides: &'static [Side],
    /// Whether it acts on one of the side's connections: in the proxy's
    /// script it must then say which, with `on`.
    pub on_connection: bool,
    /// Whether it has a result to judge (`expect`, `bytes`, `after`,
    /// `longer_than`).
    pub judged: bool,
    /// Whether it may be written as a bare string (`"close"`).
    pub bare: bool,
    /// The modifiers it takes besides the judging ones and `on`.
    pub modifiers: &'static [Uses],
    /// The JSON Schema of its value (what follows its key).
    pub value_schema: fn() -> serde_json::Value,
    /// What the JSON Schema requires of a step table with it, beyond its
    /// keys (`loop` requires `times`; `send` with `repeat` takes text).
    pub step_rules: Option<fn(&mut serde_json::Value)>,
    /// Builds it from its value and the step's modifiers, reporting every
    /// problem through `Build`; `None` when it could not be built.
    pub build: fn(&mut Build<'_, '_>) -> Option<Action>,
    /// Writes it as the timeline shows it, e.g. `recv (timeout 200 ms)`
    /// (called with an action this definition built).
    pub describe: fn(Described<'_>, &mut fmt::Formatter<'_>) -> fmt::Result,
}

impl fmt::Debug for ActionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionDef")
            .field("keyword", &self.keyword)
            .finish_non_exhaustive()
    }
}

/// An action to describe, by reference to its kind's value (a socket
/// call is described on its own, without its step).
#[derive(Debug, Clone, Copy)]
pub enum Described<'a> {
    /// A socket call.
    Socket(&'a super::SocketCall),
    /// A control step.
    Control(&'a super::Control),
    /// A check.
    Check(&'a super::Check),
}

/// Every side.
pub const ANY: &[Side] = &Side::ALL;
/// The sides that listen.
pub const LISTENING: &[Side] = &[Side::Server, Side::Proxy];
/// The sides that connect.
pub const CONNECTING: &[Side] = &[Side::Client, Side::Proxy];

/// The modifiers of every action with a result to judge.
pub const JUDGING: &[&str] = &["expect", "bytes", "after", "longer_than"];

impl ActionDef {
    /// Every key a step with this action may hold besides the action: its
    /// own modifiers, the judging ones if it is judged, and `on` if it acts
    /// on a connection.
    pub fn all_modifiers(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self.modifiers.iter().map(|m| m.keyword).collect();
        if self.judged {
            all.extend(JUDGING);
        }
        if self.on_connection {
            all.push("on");
        }
        all
    }

    /// Whether it takes the modifier `keyword` (its own, not the judging
    /// ones or `on`).
    pub fn takes(&self, keyword: &str) -> bool {
        self.modifiers.iter().any(|m| m.keyword == keyword)
    }

    /// "the server or proxy side", for messages.
    pub fn sides_in_words(&self) -> String {
        match self.sides {
            [one] => format!("the {one} side"),
            [a, b] => format!("the {a} or {b} side"),
            _ => "any side".to_string(),
        }
    }
}

/// What reads a step for its action's build: the suite reader, which
/// reports problems at their place in the file and reads a loop's body.
pub trait StepReader<'a> {
    /// Reports a problem at `span`.
    fn problem(&mut self, span: Range<usize>, message: String);
    /// Reports a TOML or value error, at its own span or else `fallback`.
    fn toml_problem(&mut self, err: toml::de::Error, fallback: Range<usize>);
    /// Reads the steps of a loop's body, taken by `side`.
    fn steps(&mut self, side: Side, value: &Spanned<DeValue<'a>>) -> Vec<Step>;
}

/// The modifiers a step holds, each read by its own definition: its value
/// (`None` when it was refused, already reported) and where it is.
pub type Modifiers = BTreeMap<&'static str, (Option<ModValue>, Range<usize>)>;

/// What an action's build is handed: its value, the step's modifiers, and
/// the reader to report problems to.
pub struct Build<'b, 'a> {
    pub(crate) reader: &'b mut dyn StepReader<'a>,
    /// The action's definition.
    pub def: &'static ActionDef,
    /// Whose script the step is in.
    pub side: Side,
    /// The action's value (for a bare step, `true`).
    pub(crate) value: Spanned<DeValue<'a>>,
    /// Where the action's key is (for a bare step, the whole step).
    pub at: Range<usize>,
    pub(crate) modifiers: &'b Modifiers,
}

impl<'a> Build<'_, 'a> {
    /// Reports a problem at `span`.
    pub fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.reader.problem(span, message.into());
    }

    /// The action's value, read as `T` (a problem at it when it is not).
    pub fn value<T: DeserializeOwned>(&mut self) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(self.value.clone())) {
            Ok(v) => Some(v),
            Err(err) => {
                self.reader.toml_problem(err, self.value.span());
                None
            }
        }
    }

    /// The action's value as written (a loop's body).
    pub fn raw_value(&self) -> &Spanned<DeValue<'a>> {
        &self.value
    }

    /// Reads a loop's body as steps of the side's.
    pub fn steps(&mut self, value: &Spanned<DeValue<'a>>) -> Vec<Step> {
        self.reader.steps(self.side, value)
    }

    /// The modifier `keyword`'s value, if the step wrote it and it was read.
    pub fn get(&self, keyword: &str) -> Option<&ModValue> {
        self.modifiers.get(keyword)?.0.as_ref()
    }

    /// Where the modifier `keyword` is written, if it is.
    pub fn span(&self, keyword: &str) -> Option<Range<usize>> {
        self.modifiers.get(keyword).map(|(_, at)| at.clone())
    }

    /// Whether the step wrote `keyword` and its value was refused (already
    /// reported: not missing).
    pub fn refused(&self, keyword: &str) -> bool {
        self.modifiers
            .get(keyword)
            .is_some_and(|(v, _)| v.is_none())
    }

    /// The default the definition gives `keyword`.
    fn default_of(&self, keyword: &str) -> Option<&'static str> {
        self.def
            .modifiers
            .iter()
            .find(|m| m.keyword == keyword)
            .and_then(|m| m.default)
    }

    /// A duration modifier.
    pub fn duration(&self, keyword: &str) -> Option<Duration> {
        match self.get(keyword)? {
            ModValue::Duration(d) => Some(*d),
            _ => None,
        }
    }

    /// A whole-number modifier.
    pub fn number(&self, keyword: &str) -> Option<u64> {
        match self.get(keyword)? {
            ModValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A whole-number modifier, or its default.
    pub fn number_or_default(&self, keyword: &str) -> u64 {
        self.number(keyword)
            .or_else(|| self.default_of(keyword)?.parse().ok())
            .unwrap_or_default()
    }

    /// A yes/no modifier, `false` when left out.
    pub fn switch(&self, keyword: &str) -> bool {
        matches!(self.get(keyword), Some(ModValue::Bool(true)))
    }

    /// A yes/no modifier, `None` when left out.
    pub fn bool(&self, keyword: &str) -> Option<bool> {
        match self.get(keyword)? {
            ModValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A text modifier.
    pub fn text(&self, keyword: &str) -> Option<&str> {
        match self.get(keyword)? {
            ModValue::Text(t) => Some(t),
            _ => None,
        }
    }

    /// A text modifier, or its default.
    pub fn text_or_default(&self, keyword: &str) -> Option<&str> {
        self.text(keyword).or_else(|| self.default_of(keyword))
    }

    /// The outcomes a modifier (`expect`, `until`) names, each unknown
    /// name reported at itself; `None` when left out or refused.
    pub fn outcomes(&mut self, keyword: &str) -> Option<Vec<Outcome>> {
        let ModValue::Outcomes(expect, span) = self.get(keyword)?.clone() else {
            return None;
        };
        let reader = &mut self.reader;
        Some(outcomes(expect, span, |at, why| reader.problem(at, why)))
    }
}
