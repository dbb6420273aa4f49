//! hangup: what does my server do when a client hangs up?
//!
//! (crate docs come with the runner)

pub mod bench;
pub mod cli;
pub mod errno;
pub mod observe;
pub mod peer;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod side;
pub mod suite;
pub mod tcp_state;
pub mod verdict;
