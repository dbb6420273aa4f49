//! How durations are written in reports: milliseconds, as a number with
//! microseconds as its fraction (`"took_ms": 200.412`), which is what
//! people and scripts reading the JSON expect. Fields that use these carry
//! `_ms` in their names, and `#[schemars(with = "f64")]` so that the
//! report's JSON Schema says the same. And how a number or a chance is
//! written for people ([`number`], [`percent`]): short, whatever its size.

use std::time::Duration;

/// A [`Duration`] as milliseconds (`#[serde(with = "millis")]`).
pub mod millis {
    use super::Duration;

    /// Writes `d` as milliseconds, to the microsecond.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(as_ms(*d))
    }

    /// Reads milliseconds back; a negative, infinite or absurd value is an
    /// error, not a panic.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = <f64 as serde::Deserialize>::deserialize(d)?;
        from_ms(ms).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a duration in milliseconds (0 or more), found {ms}"
            ))
        })
    }

    /// `d` in milliseconds, to the microsecond.
    pub fn as_ms(d: Duration) -> f64 {
        (d.as_micros() as f64) / 1000.0
    }

    /// Milliseconds as a duration, when they are one.
    pub fn from_ms(ms: f64) -> Option<Duration> {
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    }
}

/// An optional [`Duration`] as milliseconds
/// (`#[serde(default, with = "millis_option", skip_serializing_if = "Option::is_none")]`).
pub mod millis_option {
    use super::{Duration, millis};

    /// Writes `d` as milliseconds, or nothing.
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&millis::as_ms(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads optional milliseconds back.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let ms = <Option<f64> as serde::Deserialize>::deserialize(d)?;
        ms.map(|ms| {
            millis::from_ms(ms).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected a duration in milliseconds (0 or more), found {ms}"
                ))
            })
        })
        .transpose()
    }
}

/// `x` as a person reads it in a message or a timeline: four significant
/// digits (a whole number under a million in full), without trailing
/// zeros; positional from 0.001 to under a million, scientific beyond (`1e-300`, not 300 zeros). Rust's
/// own `{}` never uses an exponent and shows every digit of a float's
/// shortest form (`0.07 * 100.0` is `7.000000000000001`).
pub fn number(x: f64) -> String {
    significant(x, 4)
}

/// A probability as a percentage, as [`number`] writes it (`50%`,
/// `12.35%`, `2.328e-8%`), with more digits where four would round a
/// chance below 1 up to `100%`.
pub fn percent(p: f64) -> String {
    let mut digits = 4;
    loop {
        let text = significant(p * 100.0, digits);
        if p >= 1.0 || text != "100" || digits >= 17 {
            return format!("{text}%");
        }
        digits += 1;
    }
}

/// `x` rounded to `digits` significant digits (1 to 17), as [`number`]
/// describes.
fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let scientific = format!("{x:.*e}", digits - 1);
    // `{:e}` always writes a mantissa, `e` and an integer exponent.
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-3..6).contains(&exponent) {
        let decimals = (digits as i32 - 1 - exponent).max(0) as usize;
        without_trailing_zeros(format!("{x:.decimals$}"))
    } else {
        format!(
            "{}e{exponent}",
            without_trailing_zeros(mantissa.to_string())
        )
    }
}

/// `12.500` as `12.5`, `3.000` as `3`; a number without a point as it is.
fn without_trailing_zeros(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A JSON Schema for a type written as one of a fixed set of strings.
pub(crate) fn string_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "description": description })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_short_whatever_their_size() {
        for (x, text) in [
            (0.5, "0.5"),
            (7.000000000000001, "7"),
            (12.3456, "12.35"),
            (9.99996, "10"),
            (0.001, "0.001"),
            (0.000123, "1.23e-4"),
            (123456.0, "123456"),
            (123456.78, "123457"),
            (999999.6, "1e6"),
            (1e-300, "1e-300"),
            (1e300, "1e300"),
            (-2.5e-7, "-2.5e-7"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(number(x), text, "{x:e}");
        }
    }

    #[test]
    fn a_probability_is_a_short_percentage_that_never_rounds_up_to_certain() {
        for (p, text) in [
            (1.0, "100%"),
            (0.5, "50%"),
            (0.07, "7%"),
            (0.123456, "12.35%"),
            (0.999999, "99.9999%"),
            (1.0 - 1e-15, "99.9999999999999%"),
            (1e-5, "0.001%"),
            (1.0 / 4_294_967_296.0, "2.328e-8%"),
            (1e-300, "1e-298%"),
        ] {
            assert_eq!(percent(p), text, "{p:e}");
        }
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Timed {
        #[serde(with = "millis")]
        took_ms: Duration,
        #[serde(
            default,
            with = "millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        timeout_ms: Option<Duration>,
    }

    #[test]
    fn durations_are_milliseconds_to_the_microsecond_and_read_back() {
        let timed = Timed {
            took_ms: Duration::from_micros(200_412),
            timeout_ms: None,
        };
        let json = serde_json::to_string(&timed).expect("json");
        assert_eq!(json, r#"{"took_ms":200.412}"#);
        assert_eq!(serde_json::from_str::<Timed>(&json).expect("back"), timed);
        let negative = serde_json::from_str::<Timed>(r#"{"took_ms":-1}"#).unwrap_err();
        assert!(negative.to_string().contains("found -1"), "{negative}");
        let with: Timed =
            serde_json::from_str(r#"{"took_ms":0,"timeout_ms":25.5}"#).expect("optional");
        assert_eq!(with.timeout_ms, Some(Duration::from_micros(25_500)));
    }
}
