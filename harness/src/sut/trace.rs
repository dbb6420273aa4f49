//! Tracing a program's socket calls: which of its writes failed with
//! EPIPE, whether it read after the client left, when it closed.
//!
//! # How
//!
//! The program's init (pid 1 of its PID namespace, its parent; see
//! [`super::spawn`]) is its tracer. The program installs a seccomp filter
//! before it execs that stops it, through `SECCOMP_RET_TRACE`, at the calls
//! of [`TRACED`] only; every other call runs at full speed. At such a stop
//! init asks the kernel for the call (`PTRACE_GET_SYSCALL_INFO`), takes a
//! brief copy of the fd it names (`pidfd_getfd`, on the stopped thread's
//! pidfd, which init keeps) to learn whether it is a TCP socket (known by
//! its cookie after the first look, see [`Sockets`]) and its addresses,
//! and drops the copy before the call runs, so that a `close` still
//! releases the socket when the program says. A TCP call then goes on to
//! its exit stop, where init reads its result. Both ends go to hangup as
//! fixed-size [`Record`]s on a [`Ring`] in shared memory; a thread here
//! pairs them per thread into [`TracedCall`]s and puts each on the case's
//! timeline.
//!
//! Threads and children are traced too (`PTRACE_O_TRACECLONE`, `FORK`,
//! `VFORK`): a JVM's, Node's or uvicorn's worker threads alike. Init is the
//! program's parent with the same credentials, so no privilege is needed,
//! and hangup's user namespace is enough.
//!
//! # What it costs the program
//!
//! Two stops per traced socket call (entry and exit) and one per call on a
//! file or pipe fd (entry only), and `no_new_privs`: a traced program
//! cannot gain privileges through a setuid binary. At the entry stop init
//! makes five syscalls (the call's info, the fd's copy, its cookie, its
//! two addresses; three on no socket) and closes the copy; at the exit
//! stop, one. The benchmark measures the slowdown on a request loop
//! against the floor of any ptrace tracer of results, a tracer with the
//! same stops that does nothing at them ([`floor_until`], `hangup
//! bench`).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::libc;

use crate::model::syscall::{self, AUDIT_ARCH, Class, Syscall, TRACED};
use crate::model::{CallResult, Errno, Side};
use crate::record::{EventKind, Route, TracedSyscall};

/// A record's kind: the call's entry, with its socket.
const ENTRY: u16 = 1;
/// A record's kind: the call's result.
const EXIT: u16 = 2;

/// One message from init: a call's entry or its exit, on the [`Ring`].
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Record {
    kind: u16,
    /// For an entry: which argument held the socket's fd.
    fd_arg: u16,
    /// The thread, as the program's PID namespace numbers it.
    tid: i32,
    /// The call's number (entry).
    nr: i64,
    /// The socket's fd in the program (entry).
    fd: i64,
    /// The kernel's return value (exit): a count, or `-errno`.
    ret: i64,
    /// `CLOCK_MONOTONIC` at the stop, in nanoseconds.
    mono_ns: u64,
    /// The socket's inode (entry).
    inode: u64,
    /// The socket's cookie (`SO_COOKIE`, entry).
    cookie: u64,
    local_len: u32,
    peer_len: u32,
    /// `getsockname` (entry): a `sockaddr_in` or `sockaddr_in6`.
    local: [u8; 28],
    /// `getpeername` (entry); none once the connection is reset.
    peer: [u8; 28],
}

/// The seccomp filter: stop (`SECCOMP_RET_TRACE`) at each call of
/// [`TRACED`] made through the native ABI, allow everything else.
pub(super) fn filter() -> Vec<libc::sock_filter> {
    let n = TRACED.len();
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: usize, jf: usize| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: jt as u8,
        jf: jf as u8,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // seccomp_data: nr at 0, arch at 4.
    let mut program = vec![stmt(load, 4), jump(AUDIT_ARCH, 0, n + 1), stmt(load, 0)];
    for (k, call) in TRACED.iter().enumerate() {
        // A match jumps over the rest and the ALLOW to the TRACE.
        program.push(jump(call.nr as u32, n - k, 0));
    }
    program.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    program.push(stmt(ret, libc::SECCOMP_RET_TRACE));
    program
}

/// `struct ptrace_syscall_info`, with its union as words: for a seccomp
/// stop the call's number then its six arguments, for an exit its return
/// value.
#[repr(C)]
struct SyscallInfo {
    op: u8,
    reserved: u8,
    flags: u16,
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    data: [u64; 8],
}

/// Init's tracing loop: resumes every stop of the program's threads and
/// children, sends a record for each socket call, and, like
/// `spawn::reap_until`, reports the program's end to the relay and exits.
///
/// # Safety
///
/// Only in init, under `spawn`'s rules: raw syscalls, no allocation.
pub(super) unsafe fn trace_until(
    program: libc::pid_t,
    to_relay: RawFd,
    ring: *mut Shared,
    doorbell: RawFd,
) -> ! {
    // SAFETY: syscalls on our own fds and on tracees we seized.
    unsafe {
        super::raw::block_signals();
        let (a, b) = (to_relay.min(doorbell), to_relay.max(doorbell));
        super::raw::close_all_but(&[a, b]);
        let mut tracer = Recording {
            sender: Sender {
                shared: ring,
                doorbell,
            },
            accepting: [0; ACCEPTING],
            sockets: Sockets {
                pidfds: [(0, -1); PIDFDS],
                next_pidfd: 0,
                known: [Known::NONE; KNOWN],
            },
        };
        resume_stops(program, to_relay, &mut tracer)
    }
}

/// The benchmark's floor (`hangup bench`): init traces the program under
/// the same filter, with the same options and the same stops as
/// [`trace_until`] (each filtered call's seccomp stop, then its exit
/// stop), and does nothing at them: no look at the call, no record. What
/// hangup's tracer costs beyond this is its own.
///
/// # Safety
///
/// As [`trace_until`].
/// Without `exits`, it makes the seccomp stops alone: the floor of a
/// mechanism that sees each call but not its result.
pub(super) unsafe fn floor_until(program: libc::pid_t, to_relay: RawFd, exits: bool) -> ! {
    // SAFETY: as trace_until.
    unsafe {
        super::raw::block_signals();
        super::raw::close_all_but(&[to_relay]);
        resume_stops(program, to_relay, &mut Floor { exits })
    }
}

/// What a tracer does at its program's stops; [`resume_stops`] waits for
/// them and resumes them.
trait AtStops {
    /// At a call's seccomp stop: whether its exit stop is wanted.
    ///
    /// # Safety
    ///
    /// `tid` is a tracee in a seccomp stop.
    unsafe fn entered(&mut self, tid: libc::pid_t) -> bool;

    /// At the exit stop of a call `entered` wanted it of.
    ///
    /// # Safety
    ///
    /// `tid` is a tracee in a syscall-exit stop.
    unsafe fn exited(&mut self, tid: libc::pid_t);

    /// `tid` ended (or left: an exec's other threads).
    fn gone(&mut self, tid: libc::pid_t);
}

/// The loop both tracers share: waits for each stop of the program's
/// threads and children, lets `at` look at the calls', resumes it, and
/// once the program ended reports its wait status to the relay and exits.
///
/// # Safety
///
/// Only in init, under `spawn`'s rules: raw syscalls, no allocation.
unsafe fn resume_stops(program: libc::pid_t, to_relay: RawFd, at: &mut impl AtStops) -> ! {
    // SAFETY: syscalls on our own fds and on tracees we seized.
    unsafe {
        loop {
            let mut status = 0;
            let tid = libc::waitpid(-1, &mut status, libc::__WALL);
            if tid < 0 {
                if super::raw::errno() == libc::EINTR {
                    continue;
                }
                libc::_exit(126);
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                at.gone(tid);
                if tid == program {
                    let raw = status.to_ne_bytes();
                    libc::write(to_relay, raw.as_ptr().cast(), raw.len());
                    libc::_exit(0);
                }
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let signal = libc::WSTOPSIG(status);
            let event = (status >> 16) & 0xffff;
            let (request, deliver) = if event == libc::PTRACE_EVENT_SECCOMP {
                if at.entered(tid) {
                    (libc::PTRACE_SYSCALL, 0)
                } else {
                    (libc::PTRACE_CONT, 0)
                }
            } else if signal == libc::SIGTRAP | 0x80 {
                at.exited(tid);
                (libc::PTRACE_CONT, 0)
            } else if event == libc::PTRACE_EVENT_STOP {
                // A group stop (SIGSTOP and the like) stays a stop until a
                // SIGCONT; any other event stop (a new thread's first) goes on.
                match signal {
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                        (libc::PTRACE_LISTEN, 0)
                    }
                    _ => (libc::PTRACE_CONT, 0),
                }
            } else if event != 0 {
                (libc::PTRACE_CONT, 0)
            } else {
                // A signal on its way to the program: deliver it.
                (libc::PTRACE_CONT, signal)
            };
            libc::ptrace(request, tid, NULL, deliver as libc::c_ulong);
        }
    }
}

/// The floor's tracer: nothing looked at, every exit stop or none.
struct Floor {
    exits: bool,
}

impl AtStops for Floor {
    unsafe fn entered(&mut self, _: libc::pid_t) -> bool {
        self.exits
    }

    unsafe fn exited(&mut self, _: libc::pid_t) {}

    fn gone(&mut self, _: libc::pid_t) {}
}

/// hangup's tracer: records each socket call.
struct Recording {
    sender: Sender,
    /// The threads inside an accept whose entry was sent: at its exit
    /// the new connection's socket is looked at too. A full table only
    /// loses that look (the accept is recorded all the same).
    accepting: [libc::pid_t; ACCEPTING],
    sockets: Sockets,
}

impl AtStops for Recording {
    unsafe fn entered(&mut self, tid: libc::pid_t) -> bool {
        // SAFETY: the caller's.
        match unsafe { entered(tid, &mut self.sender, &mut self.sockets) } {
            Some(call) => {
                if call.class == Some(Class::Accept) {
                    if let Some(slot) = self.accepting.iter_mut().find(|t| **t == 0) {
                        *slot = tid;
                    }
                }
                true
            }
            None => false,
        }
    }

    unsafe fn exited(&mut self, tid: libc::pid_t) {
        let accepted = self.accepting.iter_mut().find(|t| **t == tid);
        let accept = accepted.is_some();
        if let Some(slot) = accepted {
            *slot = 0;
        }
        // SAFETY: the caller's.
        unsafe { exited(tid, &mut self.sender, &mut self.sockets, accept) };
    }

    fn gone(&mut self, tid: libc::pid_t) {
        self.sockets.forget(tid);
    }
}

/// Threads that may be inside a traced accept at once (see
/// `trace_until`).
const ACCEPTING: usize = 64;

/// The `addr` argument of a ptrace request that takes none.
const NULL: *mut libc::c_void = std::ptr::null_mut();

/// `CLOCK_MONOTONIC` now, in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec on our stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// What the kernel says of `tid`'s current stop, if anything.
unsafe fn syscall_info(tid: libc::pid_t) -> Option<SyscallInfo> {
    // SAFETY: the kernel writes at most `size_of::<SyscallInfo>()` bytes.
    unsafe {
        let mut info: SyscallInfo = std::mem::zeroed();
        let size = std::mem::size_of::<SyscallInfo>();
        let got = libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid,
            size,
            (&raw mut info).cast::<libc::c_void>(),
        );
        (got > 0).then_some(info)
    }
}

/// At a seccomp stop: if the call is on a TCP socket, sends its entry
/// record and says so (its exit is then wanted).
unsafe fn entered(
    tid: libc::pid_t,
    sender: &mut Sender,
    sockets: &mut Sockets,
) -> Option<&'static Syscall> {
    // SAFETY: raw syscalls on a stopped tracee and our own stack.
    unsafe {
        let mono_ns = monotonic_ns();
        let info = syscall_info(tid)?;
        if info.op != libc::PTRACE_SYSCALL_INFO_SECCOMP {
            return None;
        }
        let nr = info.data[0] as i64;
        let call = TRACED.iter().find(|s| s.nr == nr)?;
        for (i, &arg) in call.fd_args.iter().enumerate() {
            if i > 0 && arg == call.fd_args[0] {
                break;
            }
            let fd = info.data[1 + arg as usize] as i64;
            let mut record: Record = std::mem::zeroed();
            if sockets.socket_of(tid, fd, &mut record) {
                record.kind = ENTRY;
                record.fd_arg = arg as u16;
                record.tid = tid;
                record.nr = nr;
                record.fd = fd;
                record.mono_ns = mono_ns;
                sender.push(record);
                return Some(call);
            }
        }
        None
    }
}

/// At the exit stop of a call whose entry was sent: sends its result;
/// for an `accept` that returned a TCP connection, with that connection's
/// socket (its peer is known now, and may not be at the program's next
/// call, should the client reset it first).
unsafe fn exited(tid: libc::pid_t, sender: &mut Sender, sockets: &mut Sockets, accept: bool) {
    // SAFETY: raw syscalls on a stopped tracee and our own stack.
    unsafe {
        let mono_ns = monotonic_ns();
        let Some(info) = syscall_info(tid) else {
            return;
        };
        if info.op != libc::PTRACE_SYSCALL_INFO_EXIT {
            return;
        }
        let mut record: Record = std::mem::zeroed();
        let ret = info.data[0] as i64;
        if !(accept && ret >= 0 && sockets.socket_of(tid, ret, &mut record)) {
            record = std::mem::zeroed();
        }
        record.kind = EXIT;
        record.tid = tid;
        record.ret = ret;
        record.fd = ret;
        record.mono_ns = mono_ns;
        sender.push(record);
    }
}

/// Records the ring holds: hangup's reader empties it every
/// [`GATHER`], and a busy program makes a traced call every few
/// microseconds at most.
const RING: usize = 2048;

/// The records' way from init to hangup: a ring in memory that hangup
/// maps shared before it forks the relay, so that init, a fork of a fork,
/// writes where hangup reads. A record costs init no syscall, where a
/// write on a pipe cost it one per stop and a `waitpid` to learn whether
/// another stop was pending before it (four per traced call). The pipe
/// stays, as a doorbell: init rings it (one byte) only when the reader
/// said it would sleep until the next record, and its end (init's exit)
/// is the reader's end.
#[repr(C)]
pub(super) struct Shared {
    /// Records written, by init alone.
    head: AtomicU64,
    /// Records read, by hangup's reader alone.
    tail: AtomicU64,
    /// Set by the reader before it blocks on the doorbell; init clears it
    /// when it rings.
    asleep: AtomicU32,
    records: [Record; RING],
}

/// hangup's mapping of a [`Shared`] ring; unmapped when dropped (init's
/// own mapping, in its own address space, stays until it exits).
pub(super) struct Ring {
    shared: std::ptr::NonNull<Shared>,
}

// SAFETY: the mapping belongs to the Ring alone in this process; what it
// shares with init goes through the atomics (see `Shared`).
unsafe impl Send for Ring {}

impl Ring {
    /// A fresh, empty ring.
    pub(super) fn new() -> std::io::Result<Ring> {
        // SAFETY: a new anonymous mapping, zeroed by the kernel: empty
        // counters and zeroed records are a valid `Shared`.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Shared>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let shared = std::ptr::NonNull::new(raw.cast()).ok_or(std::io::ErrorKind::Other)?;
        Ok(Ring { shared })
    }

    /// The mapping, for init (which inherits it at the fork).
    pub(super) fn as_ptr(&self) -> *mut Shared {
        self.shared.as_ptr()
    }

    fn shared(&self) -> &Shared {
        // SAFETY: mapped for our life; the fields read through a shared
        // reference are atomics (records are read by `take_records`
        // through raw pointers).
        unsafe { self.shared.as_ref() }
    }

    /// Hands each record init wrote since the last call to `each`, oldest
    /// first; how many there were.
    fn take_records(&self, mut each: impl FnMut(Record)) -> u64 {
        let shared = self.shared();
        let tail = shared.tail.load(Ordering::Relaxed);
        let head = shared.head.load(Ordering::Acquire);
        for at in tail..head {
            // SAFETY: records from tail to head are written whole (init
            // stores head after the record, with Release) and stay
            // untouched until tail passes them.
            let record = unsafe {
                std::ptr::read(
                    (&raw const (*self.shared.as_ptr()).records)
                        .cast::<Record>()
                        .add((at % RING as u64) as usize),
                )
            };
            each(record);
        }
        shared.tail.store(head, Ordering::Release);
        head - tail
    }

    /// Says the reader will sleep until init's next record rings the
    /// doorbell; false (and awake) if one came meanwhile.
    fn may_sleep(&self) -> bool {
        let shared = self.shared();
        shared.asleep.store(1, Ordering::SeqCst);
        if shared.head.load(Ordering::SeqCst) != shared.tail.load(Ordering::Relaxed) {
            shared.asleep.store(0, Ordering::SeqCst);
            return false;
        }
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of this size, unused from now on.
        unsafe {
            libc::munmap(self.shared.as_ptr().cast(), std::mem::size_of::<Shared>());
        }
    }
}

/// Init's end of the ring.
struct Sender {
    shared: *mut Shared,
    doorbell: RawFd,
}

impl Sender {
    /// Puts `record` on the ring, and rings the doorbell if the reader
    /// sleeps. A full ring blocks the tracer (and so the program) until
    /// hangup reads: no record is dropped, unless hangup is gone.
    fn push(&mut self, record: Record) {
        // SAFETY: the mapping lives as long as init; init alone writes
        // head and the records past it (see `Shared`).
        unsafe {
            let shared = &*self.shared;
            let head = shared.head.load(Ordering::Relaxed);
            while head - shared.tail.load(Ordering::Acquire) >= RING as u64 {
                // Full: wake the reader should it sleep, and wait for it.
                if !self.ring_doorbell(true) {
                    return;
                }
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000,
                };
                libc::nanosleep(&pause, std::ptr::null_mut());
            }
            std::ptr::write(
                (&raw mut (*self.shared).records)
                    .cast::<Record>()
                    .add((head % RING as u64) as usize),
                record,
            );
            shared.head.store(head + 1, Ordering::SeqCst);
            self.ring_doorbell(false);
        }
    }

    /// Writes a byte on the doorbell if the reader said it sleeps (or,
    /// `always`, whatever it said); false once hangup is gone.
    fn ring_doorbell(&mut self, always: bool) -> bool {
        // SAFETY: as in `push`; a one-byte write from the stack.
        unsafe {
            let shared = &*self.shared;
            if shared.asleep.swap(0, Ordering::SeqCst) == 0 && !always {
                return true;
            }
            loop {
                let n = libc::write(self.doorbell, [1u8].as_ptr().cast(), 1);
                if n == 1 {
                    return true;
                }
                if super::raw::errno() != libc::EINTR {
                    return false;
                }
            }
        }
    }
}

/// Thread pidfds init keeps open at once: more threads than this make it
/// open one again now and then.
const PIDFDS: usize = 64;

/// Sockets init remembers: a program with more in use makes it look at
/// some again.
const KNOWN: usize = 256;

/// What init keeps between stops to look at a call's fd in few syscalls:
/// each thread's pidfd (opening one costs more than all the rest of a
/// look), and what never changes of a socket it saw, by the socket's
/// cookie.
///
/// Neither can name the wrong thing. A pidfd names one thread, never
/// another that gets its number later: a call through a stale one fails
/// (ESRCH) and a fresh one is opened. A cookie (`SO_COOKIE`) names one
/// socket for the kernel's life, never reused, so what is kept by it
/// (whether the socket is TCP, its inode) needs no invalidation: an fd
/// closed and its number reused, dup'ed, shared by threads or copied
/// into a child, is looked at anew at every call, and only its cookie
/// leads to what is kept. What can change of a socket, its addresses
/// (a connect binds it; a reset makes the kernel forget its peer), is
/// asked at every call.
struct Sockets {
    /// (tid, pidfd); a tid of 0 is a free slot.
    pidfds: [(libc::pid_t, libc::c_int); PIDFDS],
    /// The slot the next pidfd evicts once all are taken.
    next_pidfd: usize,
    /// By cookie, modulo their number; a clash just forgets one.
    known: [Known; KNOWN],
}

/// What never changes of one socket.
#[derive(Clone, Copy)]
struct Known {
    /// Its cookie; 0 for a free slot (the kernel's cookies start at 1).
    cookie: u64,
    tcp: bool,
    inode: u64,
}

impl Known {
    const NONE: Known = Known {
        cookie: 0,
        tcp: false,
        inode: 0,
    };
}

impl Sockets {
    /// `tid`'s pidfd, opened if init holds none.
    unsafe fn pidfd(&mut self, tid: libc::pid_t) -> Option<libc::c_int> {
        if let Some(&(_, pidfd)) = self.pidfds.iter().find(|(t, _)| *t == tid) {
            return Some(pidfd);
        }
        // SAFETY: pidfd_open only makes an fd of ours.
        let pidfd = unsafe {
            // A thread's own pidfd (Linux 6.9); a thread group leader's
            // without the flag on older kernels.
            let pidfd = libc::syscall(libc::SYS_pidfd_open, tid, libc::PIDFD_THREAD);
            if pidfd < 0 {
                libc::syscall(libc::SYS_pidfd_open, tid, 0)
            } else {
                pidfd
            }
        };
        if pidfd < 0 {
            return None;
        }
        let pidfd = pidfd as libc::c_int;
        let slot = match self.pidfds.iter().position(|(t, _)| *t == 0) {
            Some(free) => free,
            None => {
                let slot = self.next_pidfd;
                self.next_pidfd = (slot + 1) % PIDFDS;
                // SAFETY: a pidfd of ours, in no other slot.
                unsafe { libc::close(self.pidfds[slot].1) };
                slot
            }
        };
        self.pidfds[slot] = (tid, pidfd);
        Some(pidfd)
    }

    /// Closes `tid`'s pidfd, if init holds one: the thread is gone.
    fn forget(&mut self, tid: libc::pid_t) {
        if let Some(slot) = self.pidfds.iter_mut().find(|(t, _)| *t == tid) {
            // SAFETY: a pidfd of ours, in no other slot.
            unsafe { libc::close(slot.1) };
            *slot = (0, -1);
        }
    }

    /// A copy of `fd` of the stopped thread `tid`, or `None` when it has
    /// no such fd (or is gone).
    unsafe fn copy_of(&mut self, tid: libc::pid_t, fd: libc::c_int) -> Option<libc::c_int> {
        for _ in 0..2 {
            let pidfd = unsafe { self.pidfd(tid)? };
            // SAFETY: pidfd_getfd makes an fd of ours from the tracee's.
            let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
            if copy >= 0 {
                return Some(copy as libc::c_int);
            }
            if super::raw::errno() != libc::ESRCH {
                return None;
            }
            // The pidfd of a thread that ended, whose number is another's
            // now: open this one's.
            self.forget(tid);
        }
        None
    }

    /// Whether `fd` of the stopped thread `tid` is a TCP socket; if so,
    /// fills in its inode, cookie and addresses. The copy of the fd this
    /// takes is closed before the thread goes on.
    unsafe fn socket_of(&mut self, tid: libc::pid_t, fd: i64, record: &mut Record) -> bool {
        let Ok(fd) = libc::c_int::try_from(fd) else {
            return false;
        };
        // SAFETY: socket syscalls on our own stack and fds.
        unsafe {
            let Some(copy) = self.copy_of(tid, fd) else {
                return false;
            };
            let mut cookie: u64 = 0;
            let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
            let cookie = if libc::getsockopt(
                copy,
                libc::SOL_SOCKET,
                libc::SO_COOKIE,
                (&raw mut cookie).cast(),
                &mut len,
            ) == 0
            {
                Some(cookie)
            } else if super::raw::errno() == libc::ENOTSOCK {
                // A file or a pipe: the most common call on no socket.
                libc::close(copy);
                return false;
            } else {
                None
            };
            let slot = cookie.map(|c| (c % KNOWN as u64) as usize);
            let known = match (cookie, slot) {
                (Some(cookie), Some(slot)) if self.known[slot].cookie == cookie && cookie != 0 => {
                    self.known[slot]
                }
                _ => {
                    let known = Known {
                        cookie: cookie.unwrap_or(0),
                        tcp: false,
                        inode: 0,
                    };
                    let known = looked_at(copy, known);
                    if let Some(slot) = slot {
                        self.known[slot] = known;
                    }
                    known
                }
            };
            if known.tcp {
                record.inode = known.inode;
                record.cookie = known.cookie;
                let mut len = record.local.len() as libc::socklen_t;
                if libc::getsockname(copy, record.local.as_mut_ptr().cast(), &mut len) == 0 {
                    record.local_len = len;
                }
                let mut len = record.peer.len() as libc::socklen_t;
                if libc::getpeername(copy, record.peer.as_mut_ptr().cast(), &mut len) == 0 {
                    record.peer_len = len;
                }
            }
            libc::close(copy);
            known.tcp
        }
    }
}

/// `known` with what `copy`, an fd of ours, is: whether a TCP socket, and
/// its inode.
unsafe fn looked_at(copy: libc::c_int, mut known: Known) -> Known {
    // SAFETY: fstat and getsockopt on our own fd and stack.
    unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        let mut protocol: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        known.tcp = libc::fstat(copy, &mut stat) == 0
            && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK
            && libc::getsockopt(
                copy,
                libc::SOL_SOCKET,
                libc::SO_PROTOCOL,
                (&raw mut protocol).cast(),
                &mut len,
            ) == 0
            && protocol == libc::IPPROTO_TCP;
        known.inode = stat.st_ino;
        known
    }
}

/// A `sockaddr_in` or `sockaddr_in6` as the kernel wrote it.
fn address(bytes: &[u8; 28], len: u32) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]) as libc::c_int;
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    match family {
        libc::AF_INET if len >= 16 => {
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 if len >= 28 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&bytes[8..24]);
            let ip = Ipv6Addr::from(ip);
            // A dual-stack socket's IPv4 peer, as sock_diag and the scripts
            // name it.
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Some(SocketAddr::V4(SocketAddrV4::new(v4, port)));
            }
            let scope = u32::from_ne_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)))
        }
        _ => None,
    }
}

/// One socket call of the program's, as the kernel saw it.
#[derive(Debug, Clone)]
pub struct TracedCall {
    /// The thread that made it, as the program's PID namespace numbers it.
    pub tid: i32,
    /// Which call.
    pub call: &'static Syscall,
    /// The argument that held the socket (`splice` has two fds).
    pub fd_arg: u8,
    /// The socket's fd in the program (for an accept that returned, the
    /// connection's).
    pub fd: i64,
    /// For an accept that returned a connection: the listener's fd.
    pub listener_fd: Option<i64>,
    /// The socket's inode: one socket across its calls, also once a reset
    /// made the kernel forget its peer.
    pub inode: u64,
    /// The socket's cookie (`SO_COOKIE`): what hangup can learn of the
    /// program's end of a connection before the program touches it.
    pub cookie: u64,
    /// The socket's own address.
    pub local: Option<SocketAddr>,
    /// Its peer's, while the kernel knows it.
    pub peer: Option<SocketAddr>,
    /// When the call was made.
    pub began: Instant,
    /// When it returned, and the kernel's return value; `None` while it is
    /// in flight (a blocked read), or if the thread ended inside it.
    pub ended: Option<(Instant, i64)>,
}

impl TracedCall {
    /// What it did: its class (for `splice`, from its socket's argument).
    pub fn class(&self) -> Class {
        self.call.class_at(self.fd_arg)
    }

    /// How it ended, in the words a script's call uses: a count of bytes
    /// (for a read, 0 is EOF), or the errno.
    pub fn result(&self) -> Option<CallResult> {
        let (_, ret) = self.ended?;
        Some(if ret < 0 {
            CallResult {
                outcome: crate::model::Outcome::Errno(Errno::from_raw(-ret as i32)),
                bytes: 0,
                ready: None,
                short: None,
            }
        } else if ret == 0 && self.class() == Class::Read {
            CallResult::eof(0)
        } else {
            CallResult::ok(
                if matches!(self.class(), Class::Close | Class::Shutdown | Class::Accept) {
                    0
                } else {
                    ret as u64
                },
            )
        })
    }

    /// The call as the record keeps it, once it returned.
    pub fn recorded(&self) -> Option<TracedSyscall> {
        let result = self.result()?;
        let (ended, ret) = self.ended?;
        Some(TracedSyscall {
            syscall: self.call.name.to_string(),
            tid: self.tid,
            fd: self.listener_fd.unwrap_or(self.fd),
            accepted: (self.class() == Class::Accept && ret >= 0).then_some(ret),
            result,
            took: ended.saturating_duration_since(self.began),
            local: self.local,
            peer: self.peer,
        })
    }

    /// `writev(fd 7) = EPIPE`, `read(fd 7) = 120 B`.
    pub fn describe(&self) -> String {
        let result = match self.result() {
            Some(result) => match result.outcome {
                crate::model::Outcome::Ok if result.bytes > 0 => format!("{} B", result.bytes),
                outcome => outcome.to_string(),
            },
            None => "in flight".to_string(),
        };
        match (self.class(), &self.ended) {
            (Class::Accept, Some((_, ret))) if *ret >= 0 => {
                format!("{}() = fd {ret}", self.call.name)
            }
            _ => format!("{}(fd {}) = {result}", self.call.name, self.fd),
        }
    }
}

/// The kernel's return values that mean "interrupted by a signal, to be
/// restarted": never seen by the program, which makes the call again (and
/// is traced again).
fn restarted(ret: i64) -> bool {
    (-516..=-512).contains(&ret)
}

/// Every traced call of one program, shared by the reader thread and the
/// case's checks.
#[derive(Debug, Default)]
pub struct Calls {
    list: Mutex<Vec<TracedCall>>,
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, Vec<TracedCall>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls on the connection whose program end is `local` with peer
    /// `peer`, or has `cookie` (looked up when the connection was made):
    /// those the kernel gave these addresses or that cookie, and those on
    /// the same socket (by inode), whatever the kernel still knew of it.
    pub fn on(&self, local: SocketAddr, peer: SocketAddr, cookie: Option<u64>) -> Vec<TracedCall> {
        let list = self.lock();
        let inodes: Vec<u64> = list
            .iter()
            .filter(|c| {
                (c.local == Some(local) && c.peer == Some(peer))
                    || cookie.is_some_and(|k| k != 0 && c.cookie == k)
            })
            .map(|c| c.inode)
            .collect();
        list.iter()
            .filter(|c| inodes.contains(&c.inode))
            .cloned()
            .collect()
    }

    /// The addresses the socket with `inode` had when one of its traced
    /// calls was made (local, peer): for a socket reset into CLOSE, which
    /// the kernel no longer lists, the connection it was.
    pub fn addresses_of(&self, inode: u64) -> Option<(SocketAddr, SocketAddr)> {
        self.lock()
            .iter()
            .filter(|c| c.inode == inode)
            .find_map(|c| c.local.zip(c.peer))
    }

    /// The cookie of the socket with `inode`, from its traced calls.
    pub fn cookie_of(&self, inode: u64) -> Option<u64> {
        self.lock()
            .iter()
            .find(|c| c.inode == inode && c.cookie != 0)
            .map(|c| c.cookie)
    }

    /// How many calls were traced, on any socket.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads init's records on a thread of its own until the program ends,
/// pairing entries and exits per thread into `calls`; each finished call
/// goes on the timeline, stamped when it returned: what it reports (the
/// fd an accept returned, a read's bytes or EOF) exists only then, and a
/// call that blocked (a runtime's acceptor thread waits in `accept` for
/// the next client) would otherwise show before what it waited for.
/// `ended` is called once the pipe is at its end (or broke), so that the
/// program's stop can wait for its last calls to be on the record.
pub(super) fn read_records(
    mut doorbell: File,
    ring: Ring,
    side: Side,
    route: &Route,
    calls: &Arc<Calls>,
    ended: impl FnOnce() + Send + 'static,
) {
    let (route, calls) = (route.clone(), Arc::clone(calls));
    // The two clocks at one moment: init stamps CLOCK_MONOTONIC, which is
    // what `Instant` reads on Linux, but an `Instant` cannot be made from it.
    let (then, then_ns) = (Instant::now(), monotonic_ns());
    let instant = move |ns: u64| {
        if ns >= then_ns {
            then + Duration::from_nanos(ns - then_ns)
        } else {
            then.checked_sub(Duration::from_nanos(then_ns - ns))
                .unwrap_or(then)
        }
    };
    // Detached, like the output readers: the doorbell ends with init.
    let _ = std::thread::Builder::new()
        .name("program trace".into())
        .spawn(move || {
            let mut open: HashMap<i32, usize> = HashMap::new();
            let mut bytes = [0u8; 64];
            loop {
                let took = ring.take_records(|raw| {
                    take(raw, &mut open, &calls, &route, side, &instant);
                });
                if took > 0 {
                    // Records gather in the ring meanwhile: one wake-up
                    // for many, where one each would cost a busy program
                    // a context switch per call. Checks poll no faster
                    // than this anyway.
                    std::thread::sleep(GATHER);
                    continue;
                }
                if !ring.may_sleep() {
                    continue;
                }
                match doorbell.read(&mut bytes) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            // Init is gone: whatever it wrote before it went.
            ring.take_records(|raw| take(raw, &mut open, &calls, &route, side, &instant));
            ended();
        });
}

/// How long the reader lets records gather between reads.
const GATHER: Duration = Duration::from_millis(1);

/// Pairs one record with those before it: an entry opens a call on its
/// thread, an exit finishes the thread's open call and puts it on the
/// timeline.
fn take(
    raw: Record,
    open: &mut HashMap<i32, usize>,
    calls: &Calls,
    route: &Route,
    side: Side,
    instant: &impl Fn(u64) -> Instant,
) {
    let mut list = calls.lock();
    match raw.kind {
        ENTRY => {
            let Some(call) = syscall::by_number(raw.nr) else {
                return;
            };
            open.insert(raw.tid, list.len());
            list.push(TracedCall {
                tid: raw.tid,
                call,
                fd_arg: raw.fd_arg as u8,
                fd: raw.fd,
                listener_fd: None,
                inode: raw.inode,
                cookie: raw.cookie,
                local: address(&raw.local, raw.local_len),
                peer: address(&raw.peer, raw.peer_len),
                began: instant(raw.mono_ns),
                ended: None,
            });
        }
        EXIT => {
            let Some(at) = open.remove(&raw.tid) else {
                return;
            };
            if restarted(raw.ret) {
                // Made again at once, and traced again.
                list.remove(at);
                open.values_mut().filter(|i| **i > at).for_each(|i| *i -= 1);
                return;
            }
            let ended = instant(raw.mono_ns);
            let call = &mut list[at];
            call.ended = Some((ended, raw.ret));
            // An accept's exit names the connection it returned: the call
            // is on that connection from now on, not on the listener.
            if raw.inode != 0 {
                call.listener_fd = Some(call.fd);
                call.fd = raw.fd;
                call.inode = raw.inode;
                call.cookie = raw.cookie;
                call.local = address(&raw.local, raw.local_len);
                call.peer = address(&raw.peer, raw.peer_len);
            }
            let traced = call.recorded();
            drop(list);
            if let Some(call) = traced {
                route.push(ended, Some(side), EventKind::Traced { call });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_as_small_as_it_was() {
        assert_eq!(std::mem::size_of::<Record>(), 120);
    }

    #[test]
    fn the_filter_traces_each_call_and_allows_the_rest() {
        let filter = filter();
        assert_eq!(filter.len(), TRACED.len() + 5);
        // Every comparison jumps to the last instruction, the TRACE.
        for (k, jump) in filter[3..3 + TRACED.len()].iter().enumerate() {
            assert_eq!(3 + k + 1 + jump.jt as usize, filter.len() - 1);
        }
        assert_eq!(filter[filter.len() - 1].k, libc::SECCOMP_RET_TRACE);
        assert_eq!(filter[1].jf as usize + 2, filter.len() - 2);
    }

    #[test]
    fn addresses_are_read_as_the_kernel_writes_them() {
        let mut v4 = [0u8; 28];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            address(&v4, 16),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(address(&v4, 0), None);
    }
}
