//! The raw, serde-readable shapes of a suite's tables besides its steps
//! (a step's values are the actions' and modifiers' own, in
//! [`crate::suite::action::values`]): a sysctl's value, a tolerance, a
//! `[program]` table. Each has a hand-written `Deserialize` where serde's
//! derive would word its errors badly (no `untagged`, no `flatten`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::suite::Tolerance;
use crate::suite::action::values::DurationValue;

/// A sysctl's value: a number or a word.
pub(super) struct SysctlValue(pub(super) String);

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SysctlValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sysctl value: a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTolerance {
    floor: Option<DurationValue>,
    percent: Option<u32>,
}

impl RawTolerance {
    pub(super) fn apply(self, base: Tolerance) -> Tolerance {
        Tolerance {
            floor: self.floor.map_or(base.floor, |f| f.0),
            percent: self.percent.unwrap_or(base.percent),
        }
    }
}

/// A `[program]` table as written; [`Reader::program`](super::Reader)
/// checks what serde cannot. The strings that reach `execve` and `chdir`
/// (`run`, `env`, `cwd`) keep their spans, so a NUL byte or an `=` in a
/// variable's name is reported where it is written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgram {
    pub(super) run: Spanned<Vec<Spanned<String>>>,
    pub(super) role: Option<String>,
    pub(super) port: u16,
    pub(super) ready: Option<String>,
    pub(super) within: Option<DurationValue>,
    pub(super) stop: Option<String>,
    pub(super) grace: Option<DurationValue>,
    #[serde(default)]
    pub(super) env: RawEnv,
    pub(super) cwd: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) requires: Vec<Spanned<String>>,
    pub(super) install: Option<String>,
    pub(super) scope: Option<String>,
    #[serde(default)]
    pub(super) compare: Vec<RawVersion>,
    pub(super) baseline_runs: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) mask: Vec<Spanned<String>>,
}

/// One entry of `compare` in a `[program]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVersion {
    pub(super) name: String,
    pub(super) run: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) env: RawEnv,
}

/// An `env` table as written: each name and value where it is.
pub(super) type RawEnv = std::collections::BTreeMap<Spanned<String>, Spanned<String>>;
