//! The shared vocabulary below everything else: errno, TCP state, the sides
//! and their sockets, and how a call ended; and how text from outside is
//! shown ([`Escaped`]), and which known name a mistyped one meant
//! ([`nearest`]).
//!
//! Every other module speaks these words; this one imports none of them.
//! The names are the ones the kernel and the scenario catalog
//! (`docs/scenarios.md`) use (`EPIPE`, `CLOSE_WAIT`, `Side::Client`), so
//! reports read the way the field's write-ups do.

pub mod errno;
pub mod escaped;
mod exit;
pub mod nearest;
mod outcome;
pub mod packet;
pub mod side;
pub mod syscall;
pub mod tcp_state;
pub mod units;

pub use errno::Errno;
pub use escaped::Escaped;
pub use exit::Exit;
pub use outcome::{CallResult, Outcome, PollEvents, Short};
pub use packet::{FlagMatch, Port, Reject, TcpFlags, Verdict};
pub use side::{Link, Side, Socket};
pub use tcp_state::TcpState;
