//! How durations are written in reports: milliseconds, as a number with
//! microseconds as its fraction (`"took_ms": 200.412`), which is what
//! people and scripts reading the JSON expect. Fields that use these carry
//! `_ms` in their names, and `#[schemars(with = "f64")]` so that the
//! report's JSON Schema says the same.

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

/// A JSON Schema for a type written as one of a fixed set of strings.
pub(crate) fn string_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "description": description })
}

#[cfg(test)]
mod tests {
    use super::*;

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
