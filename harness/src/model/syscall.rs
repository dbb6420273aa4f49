//! The socket calls of a program under test that hangup can trace, by the
//! names suites write: one table, read by the parser (which names a
//! `syscall` check may use), by the tracer (which numbers its seccomp
//! filter stops) and by reports (the name of a traced call).

use std::fmt;

use nix::libc;

/// What a call does to a connection, the way a suite asks about it:
/// "the server's *write* failed with EPIPE" whichever of write, writev,
/// sendmsg or sendfile the program's runtime happens to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Sends bytes: write, writev, send*, sendfile, splice to a socket.
    Write,
    /// Receives bytes: read, readv, recv*, splice from a socket.
    Read,
    /// `close`.
    Close,
    /// `shutdown`.
    Shutdown,
    /// `accept`, `accept4`: the call is on the connection it returns (its
    /// fd), not on the listener it was made on.
    Accept,
}

impl Class {
    /// Every class, as a `syscall` check may name it.
    pub const ALL: [Class; 5] = [
        Class::Write,
        Class::Read,
        Class::Close,
        Class::Shutdown,
        Class::Accept,
    ];

    /// The name a suite writes for the whole class.
    pub fn name(self) -> &'static str {
        match self {
            Class::Write => "write",
            Class::Read => "read",
            Class::Close => "close",
            Class::Shutdown => "shutdown",
            Class::Accept => "accept",
        }
    }
}

/// One traced system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syscall {
    /// Its number on this architecture.
    pub nr: libc::c_long,
    /// Its name, as strace and the man pages write it.
    pub name: &'static str,
    /// What it does to a connection; `None` for `splice`, which sends or
    /// receives depending on which of its two fds is the socket.
    pub class: Option<Class>,
    /// Which argument holds the socket's fd: `[first, second]` to try in
    /// order (`splice` writes to its third argument, reads from its
    /// first; every other call has the fd first).
    pub fd_args: [u8; 2],
}

const fn call(nr: libc::c_long, name: &'static str, class: Class) -> Syscall {
    Syscall {
        nr,
        name,
        class: Some(class),
        fd_args: [0, 0],
    }
}

/// Every call the tracer stops at. The positional (`pwrite`, `pread`) and
/// io_uring forms are not here: the first fail on a socket with ESPIPE, the
/// second never enter the kernel through a system call per operation.
#[cfg(target_arch = "x86_64")]
pub const TRACED: &[Syscall] = &[
    call(libc::SYS_write, "write", Class::Write),
    call(libc::SYS_writev, "writev", Class::Write),
    call(libc::SYS_sendto, "sendto", Class::Write),
    call(libc::SYS_sendmsg, "sendmsg", Class::Write),
    call(libc::SYS_sendmmsg, "sendmmsg", Class::Write),
    call(libc::SYS_sendfile, "sendfile", Class::Write),
    call(libc::SYS_read, "read", Class::Read),
    call(libc::SYS_readv, "readv", Class::Read),
    call(libc::SYS_recvfrom, "recvfrom", Class::Read),
    call(libc::SYS_recvmsg, "recvmsg", Class::Read),
    call(libc::SYS_recvmmsg, "recvmmsg", Class::Read),
    call(libc::SYS_close, "close", Class::Close),
    call(libc::SYS_shutdown, "shutdown", Class::Shutdown),
    call(libc::SYS_accept, "accept", Class::Accept),
    call(libc::SYS_accept4, "accept4", Class::Accept),
    SPLICE,
];

/// Every call the tracer stops at (see the x86-64 table).
#[cfg(target_arch = "aarch64")]
pub const TRACED: &[Syscall] = &[
    call(libc::SYS_write, "write", Class::Write),
    call(libc::SYS_writev, "writev", Class::Write),
    call(libc::SYS_sendto, "sendto", Class::Write),
    call(libc::SYS_sendmsg, "sendmsg", Class::Write),
    call(libc::SYS_sendmmsg, "sendmmsg", Class::Write),
    call(libc::SYS_sendfile, "sendfile", Class::Write),
    call(libc::SYS_read, "read", Class::Read),
    call(libc::SYS_readv, "readv", Class::Read),
    call(libc::SYS_recvfrom, "recvfrom", Class::Read),
    call(libc::SYS_recvmsg, "recvmsg", Class::Read),
    call(libc::SYS_recvmmsg, "recvmmsg", Class::Read),
    call(libc::SYS_close, "close", Class::Close),
    call(libc::SYS_shutdown, "shutdown", Class::Shutdown),
    call(libc::SYS_accept, "accept", Class::Accept),
    call(libc::SYS_accept4, "accept4", Class::Accept),
    SPLICE,
];

const SPLICE: Syscall = Syscall {
    nr: libc::SYS_splice,
    name: "splice",
    class: None,
    fd_args: [2, 0],
};

/// The seccomp `AUDIT_ARCH_*` of the calls in [`TRACED`]: a call made
/// through another ABI (x86-64's 32-bit one) has other numbers and is let
/// through untraced.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E;
/// See the x86-64 constant.
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7;

/// The traced call with this number.
pub fn by_number(nr: libc::c_long) -> Option<&'static Syscall> {
    TRACED.iter().find(|s| s.nr == nr)
}

impl Syscall {
    /// What this call did: its class, or for `splice` the direction its
    /// socket argument (`fd_arg`, the index the tracer found the socket
    /// at) says.
    pub fn class_at(&self, fd_arg: u8) -> Class {
        self.class.unwrap_or(if fd_arg == 0 {
            Class::Read
        } else {
            Class::Write
        })
    }
}

/// Which calls a `syscall` check counts: a whole class (`"write"`: any
/// call that sends) or one call by name (`"sendmsg"`).
///
/// `write`, `read`, `close` and `shutdown` name classes: a suite that asks
/// whether the server's write failed means whichever call its runtime
/// writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every call of the class.
    Class(Class),
    /// This call only.
    Exact(&'static Syscall),
}

impl Which {
    /// Parses a name a suite wrote; the error lists the names there are.
    pub fn parse(name: &str) -> Result<Which, String> {
        if let Some(class) = Class::ALL.into_iter().find(|c| c.name() == name) {
            return Ok(Which::Class(class));
        }
        if let Some(call) = TRACED.iter().find(|s| s.name == name) {
            return Ok(Which::Exact(call));
        }
        Err(format!(
            "expected a traced call, found `{name}`; the calls are {} (write, read, close and shutdown name every call of their kind)",
            names().join(", ")
        ))
    }

    /// Whether a call by `call`, whose socket was argument `fd_arg`, is
    /// one of these.
    pub fn covers(self, call: &Syscall, fd_arg: u8) -> bool {
        match self {
            Which::Class(class) => call.class_at(fd_arg) == class,
            Which::Exact(one) => one.nr == call.nr,
        }
    }
}

/// Every name a `syscall` check may use, classes first.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Class::ALL.iter().map(|c| c.name()).collect();
    for call in TRACED {
        if !names.contains(&call.name) {
            names.push(call.name);
        }
    }
    names
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Which::Class(class) => f.write_str(class.name()),
            Which::Exact(call) => f.write_str(call.name),
        }
    }
}

/// Written as a suite writes it: `write`, `sendmsg`.
impl serde::Serialize for Which {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Which {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        Which::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Which {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Which".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": names(),
            "description": "Traced calls as a `syscall` check names them: a kind (`write`, `read`, `close`, `shutdown`, `accept`: every call of it) or one call (`sendmsg`).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_covers_every_call_of_its_kind_and_a_name_only_itself() {
        let writev = TRACED.iter().find(|s| s.name == "writev").expect("writev");
        let splice = TRACED.iter().find(|s| s.name == "splice").expect("splice");
        let write = Which::parse("write").expect("write");
        assert!(write.covers(writev, 0));
        assert!(write.covers(splice, 2));
        assert!(!write.covers(splice, 0));
        assert!(Which::parse("read").expect("read").covers(splice, 0));
        let exact = Which::parse("sendmsg").expect("sendmsg");
        assert!(!exact.covers(writev, 0));
        let unknown = Which::parse("ioctl").unwrap_err();
        assert!(unknown.contains("found `ioctl`"), "{unknown}");
        assert!(
            unknown.contains("write, read, close, shutdown, accept, writev"),
            "{unknown}"
        );
        let accept4 = TRACED
            .iter()
            .find(|s| s.name == "accept4")
            .expect("accept4");
        assert!(Which::parse("accept").expect("accept").covers(accept4, 0));
    }

    #[test]
    fn every_traced_number_is_distinct() {
        for (i, a) in TRACED.iter().enumerate() {
            assert!(TRACED[i + 1..].iter().all(|b| b.nr != a.nr), "{}", a.name);
        }
    }
}
