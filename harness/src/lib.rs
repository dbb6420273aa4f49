//! hangup: what does my server do when a client hangs up?
//!
//! (crate docs come with the runner)

pub mod sandbox;
pub mod tcp_state;
pub mod observe;
