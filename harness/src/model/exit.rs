//! How a program ended: an exit status or a signal, as `waitpid` reports.

use std::fmt;

use nix::sys::signal::Signal;

/// How a program ended. Reports write `{"code": 3}` or
/// `{"signal": "SIGKILL"}` (`"signal 99"` for a number without a name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// The signal's name, `SIGKILL`, or `signal N`.
    fn signal_name(number: i32) -> String {
        match Signal::try_from(number) {
            Ok(signal) => signal.as_str().to_string(),
            Err(_) => format!("signal {number}"),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Signal(number) => write!(f, "was killed by {}", Exit::signal_name(*number)),
        }
    }
}

/// The shape reports write.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Exit")]
enum Written {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it: `SIGKILL`, or `signal N`.
    Signal(String),
}

impl serde::Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            Exit::Code(code) => Written::Code(code),
            Exit::Signal(number) => Written::Signal(Exit::signal_name(number)),
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Exit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Written::deserialize(deserializer)? {
            Written::Code(code) => Ok(Exit::Code(code)),
            Written::Signal(name) => name
                .strip_prefix("signal ")
                .and_then(|n| n.parse().ok())
                .or_else(|| name.parse::<Signal>().ok().map(|s| s as i32))
                .map(Exit::Signal)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "expected a signal name like \"SIGKILL\", found \"{name}\""
                    ))
                }),
        }
    }
}

impl schemars::JsonSchema for Exit {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Exit".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Written::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_says_its_status_or_its_signal_and_reads_back() {
        assert_eq!(Exit::Code(3).to_string(), "exited with status 3");
        assert_eq!(Exit::Signal(9).to_string(), "was killed by SIGKILL");
        for exit in [Exit::Code(3), Exit::Signal(9), Exit::Signal(99)] {
            let json = serde_json::to_string(&exit).expect("json");
            assert_eq!(serde_json::from_str::<Exit>(&json).expect("back"), exit);
        }
        assert_eq!(
            serde_json::to_string(&Exit::Signal(15)).expect("json"),
            r#"{"signal":"SIGTERM"}"#
        );
    }
}
