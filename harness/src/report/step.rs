//! A step of a script as every report names it: a failure's step, a
//! sweep cell's failed step. Its own file, so that the report's format and
//! a sweep's matrix both name it without using each other.

use crate::model::Side;
use crate::record::StepId;

/// A step of a script, as reports name it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct StepRef {
    /// Whose script.
    pub side: Side,
    /// Which step.
    pub step: StepId,
    /// Where it is written (`file:line:col`).
    pub location: String,
    /// The step as written.
    pub source: String,
}

impl StepRef {
    /// The step `step` of `side`'s script, written `source` at `location`.
    pub fn new(side: Side, step: StepId, location: String, source: String) -> StepRef {
        StepRef {
            side,
            step,
            location,
            source,
        }
    }
}
