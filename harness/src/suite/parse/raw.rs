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

/// The keys a derived table type takes, as its `Deserialize` names them to
/// the deserializer (`deserialize_struct`'s `fields`): so that a key it does
/// not take is reported with the one meant ([`Reader::table_value`]) from
/// the same list serde checks, not a copy of it.
///
/// [`Reader::table_value`]: super::Reader
pub(super) fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    /// A deserializer that answers only `deserialize_struct`, keeping its
    /// field names, and fails every call: nothing is deserialized.
    struct Fields(&'static [&'static str]);

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Fields(&[]);
    // The error is the point: the fields were read on the way.
    let _ = T::deserialize(&mut fields);
    fields.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_table_names_the_keys_it_takes() {
        assert_eq!(fields_of::<RawTolerance>(), ["floor", "percent"]);
        let program = fields_of::<RawProgram>();
        assert!(
            program.contains(&"run") && program.contains(&"mask"),
            "{program:?}"
        );
    }
}
