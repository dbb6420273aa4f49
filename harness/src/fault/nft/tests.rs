//! The nf_tables exchange against the kernel, in a fresh network
//! namespace each: every rule read back as it was sent, packets dropped,
//! rejected and delayed, counted by handle, by dump and by the echo of
//! their removal, and batches larger than one transaction holds.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use netlink_packet_netfilter::nftables::{
    Bitwise, ExpressionAttribute, Expressions, ListAttribute,
};

use super::*;
use crate::fault::encode::{Expression, counter};
use crate::model::{FlagMatch, Port, Reject, TcpFlags};

fn in_fresh_netns<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    crate::sandbox::in_case_namespace(|_| test())
        .expect("a fresh network namespace; these tests need root or a user namespace")
}

fn filter(port: Port, verdict: Verdict) -> Filter {
    Filter {
        port,
        flags: None,
        data: None,
        probability: None,
        verdict,
        tag: 3,
    }
}

/// The expressions of a rule as sent, and as the kernel reads it back.
fn expressions(rule: &RuleMessage) -> Vec<Expression> {
    rule.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Expressions(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn the_kernel_reads_back_each_rule_as_it_was_sent() {
    let filters = [
        Filter {
            port: Port::Destination(8080),
            flags: Some(TcpFlags::SYN.into()),
            data: None,
            probability: Some(0.25),
            verdict: Verdict::Drop,
            tag: 1,
        },
        Filter {
            port: Port::Source(8080),
            flags: Some(TcpFlags::ACK.into()),
            data: Some(false),
            probability: None,
            verdict: Verdict::Reject {
                with: Reject::HostUnreachable,
            },
            tag: 2,
        },
        filter(
            Port::Source(9),
            Verdict::Reject {
                with: Reject::TcpReset,
            },
        ),
        // A bare reset: ACK in the mask, clear in the value.
        Filter {
            flags: Some(FlagMatch::parse("RST|!ACK").unwrap()),
            ..filter(Port::Destination(7), Verdict::Drop)
        },
        filter(
            Port::Destination(9),
            Verdict::Delay {
                by: Duration::from_millis(5),
                jitter: Duration::ZERO,
            },
        ),
    ];
    let (sent, read): (Vec<_>, Vec<_>) = in_fresh_netns(move || {
        let mut faults = Faults::open().unwrap();
        let handles = faults.install(&filters).unwrap();
        let sent: Vec<Vec<Expression>> = filters.iter().flat_map(rules).collect();
        assert_eq!(handles.len(), sent.len(), "a handle per rule");
        let read: Vec<Vec<Expression>> = faults.rules().unwrap().iter().map(expressions).collect();
        (sent, read)
    });
    assert_eq!(sent.len(), 1 + 22 + 1 + 1 + 1);
    assert_eq!(read.len(), sent.len());
    for (sent, read) in sent.iter().zip(&read) {
        // The kernel adds the counter's zero counts, and bitwise's
        // default operation (mask and xor, which older kernels do not
        // name); all else is as sent.
        let without_counts = |rule: &Vec<Expression>| -> Vec<Expression> {
            rule.iter()
                .map(|e| match e {
                    ListAttribute::Element(a) => ListAttribute::Element(
                        a.iter()
                            .map(|x| match x {
                                ExpressionAttribute::Data(Expressions::Bitwise(b)) => {
                                    ExpressionAttribute::Data(Expressions::Bitwise(
                                        b.iter()
                                            .filter(|y| !matches!(y, Bitwise::Op(0)))
                                            .cloned()
                                            .collect(),
                                    ))
                                }
                                other => other.clone(),
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                })
                .map(|e| match e {
                    ListAttribute::Element(a)
                        if a.iter().any(
                            |x| matches!(x, ExpressionAttribute::Name(n) if n == "counter"),
                        ) =>
                    {
                        counter()
                    }
                    other => other,
                })
                .collect()
        };
        assert_eq!(without_counts(read), without_counts(sent));
    }
}

#[test]
fn a_dropped_syn_is_lost_and_a_rejected_one_refused_then_lifted() {
    in_fresh_netns(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut faults = Faults::open().unwrap();
        let connect = || {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket
                .connect_timeout(
                    &listener.local_addr().unwrap().into(),
                    Duration::from_millis(300),
                )
                .map(|()| TcpStream::from(socket))
        };
        let syn = Filter {
            flags: Some(TcpFlags::SYN.into()),
            ..filter(Port::Destination(port), Verdict::Drop)
        };
        let dropped = faults.install(&[syn]).unwrap();
        let err = connect().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        // The first SYN and none, one or two retransmissions.
        let counted = faults.packets(&dropped).unwrap();
        assert!(counted >= 1);
        // The kernel logged it as it dropped it: its head, from the
        // IP header, and the rule's tag.
        let taken = faults.taken().unwrap();
        assert!(!taken.is_empty(), "the dropped SYN was logged");
        assert!(
            taken.iter().all(|t| t.tag == 3 && t.packet[0] >> 4 == 4),
            "{taken:?}"
        );
        // Removed, the kernel echoes what it counted: the same.
        let removed = faults.remove(&dropped).all().unwrap();
        assert_eq!(removed, HashMap::from([(dropped[0], counted)]));
        assert!(connect().is_ok());

        let rejected = faults
            .install(&[filter(
                Port::Destination(port),
                Verdict::Reject {
                    with: Reject::TcpReset,
                },
            )])
            .unwrap();
        let err = connect().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert_eq!(faults.packets(&rejected).unwrap(), 1);
        let removed = faults.remove(&rejected).all().unwrap();
        assert_eq!(removed.values().sum::<u64>(), 1);
        assert!(faults.rules().unwrap().is_empty());
        assert!(connect().is_ok());
    });
}

#[test]
fn a_delayed_syn_arrives_late_and_is_not_lost() {
    let (took, held, packets, logged) = in_fresh_netns(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut faults = Faults::open().unwrap();
        let delay = Filter {
            flags: Some(TcpFlags::SYN.into()),
            ..filter(
                Port::Destination(port),
                Verdict::Delay {
                    by: Duration::from_millis(300),
                    jitter: Duration::ZERO,
                },
            )
        };
        let handles = faults.install(&[delay]).unwrap();
        let start = std::time::Instant::now();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let took = start.elapsed();
        drop(stream);
        let (held, trouble) = faults.held();
        assert!(trouble.is_empty(), "{trouble:?}");
        let packets = faults.packets(&handles).unwrap();
        let logged = faults.taken().unwrap();
        (took, held, packets, logged)
    });
    // The SYN waited in the kernel 300 ms; no retransmission (the first
    // comes at 1 s) went out meanwhile.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(packets, 1);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].tag, 3);
    assert_eq!(held[0].held, Duration::from_millis(300));
    assert_eq!(held[0].packet[0] >> 4, 4, "from its IP header");
    assert!(
        logged.is_empty(),
        "a delayed packet is not lost: {logged:?}"
    );
}

/// A drop put in place after a delay still takes the packets the delay
/// would hold (its chain comes first); and what a delay still holds
/// when the faults go is let go, not lost.
#[test]
fn a_drop_beats_a_delay_and_the_held_go_on_at_the_end() {
    let (dropped, held, took) = in_fresh_netns(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let port = to.port();
        let mut faults = Faults::open().unwrap();
        let syn = |verdict| Filter {
            flags: Some(TcpFlags::SYN.into()),
            ..filter(Port::Destination(port), verdict)
        };
        let delay = Verdict::Delay {
            by: Duration::from_secs(30),
            jitter: Duration::ZERO,
        };
        faults.install(&[syn(delay)]).unwrap();
        let drop_rule = faults.install(&[syn(Verdict::Drop)]).unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let err = socket
            .connect_timeout(&to.into(), Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        let dropped = faults.packets(&drop_rule).unwrap();
        let (held, _) = faults.held();
        faults.remove(&drop_rule).all().unwrap();
        // Now held for 30 s; the faults go after 100 ms, and the SYN
        // with them, on its way.
        let connecting = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            TcpStream::connect(to).map(|_| start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(faults);
        let took = connecting.join().unwrap().unwrap();
        (dropped, held.len(), took)
    });
    assert!(dropped >= 1);
    assert_eq!(held, 0, "a dropped SYN is not also held");
    assert!(
        took < Duration::from_millis(900),
        "{took:?}: let go at the end, not retransmitted"
    );
}

#[test]
fn a_probability_takes_about_that_share() {
    let share = in_fresh_netns(|| {
        // Segments to a port nobody listens on are answered by RST; the
        // rule counts the SYNs it drops among 400 tries.
        let mut faults = Faults::open().unwrap();
        let rule = Filter {
            probability: Some(0.5),
            ..filter(Port::Destination(9), Verdict::Drop)
        };
        let handles = faults.install(&[rule]).unwrap();
        let mut refused = 0;
        for _ in 0..400 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_nonblocking(true).unwrap();
            let to: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
            let _ = socket.connect(&to.into());
            std::thread::sleep(Duration::from_millis(1));
            if socket.take_error().unwrap().is_some() {
                refused += 1;
            }
        }
        let dropped = faults.packets(&handles).unwrap();
        assert_eq!(dropped + refused, 400, "each SYN dropped or refused");
        dropped
    });
    // 0.5 of 400: outside 140..=260 once in about 10^9 runs.
    assert!((140..=260).contains(&share), "{share} of 400");
}

/// More rules than one transaction holds ([`BATCH_RULES`]) go in and
/// come out in several, each read back once: 10 ports with `data`,
/// 220 rules, four transactions each way.
#[test]
fn rules_past_one_transaction_go_in_and_out_in_several() {
    let (handles, read, removed, left) = in_fresh_netns(|| {
        let mut faults = Faults::open().unwrap();
        let filters: Vec<Filter> = (9000..9010)
            .map(|port| Filter {
                data: Some(true),
                ..filter(Port::Destination(port), Verdict::Drop)
            })
            .collect();
        let handles = faults.install(&filters).unwrap();
        let read = faults.rules().unwrap().len();
        let removed = faults.remove(&handles).all().unwrap();
        let left = faults.rules().unwrap().len();
        (handles, read, removed, left)
    });
    assert!(handles.len() > 3 * BATCH_RULES);
    assert_eq!(handles.len(), 10 * crate::fault::RULES_WITH_DATA);
    let distinct: std::collections::HashSet<_> = handles.iter().collect();
    assert_eq!(distinct.len(), handles.len(), "a handle per rule");
    assert_eq!(read, handles.len());
    let mut removed: Vec<u64> = removed.into_keys().collect();
    removed.sort_unstable();
    let mut sorted = handles.clone();
    sorted.sort_unstable();
    assert_eq!(removed, sorted, "each rule removed and counted");
    assert_eq!(left, 0);
}

/// A fault's count is read by its rules' handles alone, and every
/// rule's by one dump: both the kernel's counters, the same.
#[test]
fn counts_by_handle_and_by_dump_agree() {
    let (one, all, third) = in_fresh_netns(|| {
        let mut faults = Faults::open().unwrap();
        let mut handles = Vec::new();
        for port in [9, 10, 11] {
            handles.extend(
                faults
                    .install(&[filter(Port::Destination(port), Verdict::Drop)])
                    .unwrap(),
            );
        }
        // Two SYNs to port 11, dropped (and not retransmitted yet).
        for _ in 0..2 {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_nonblocking(true).unwrap();
            let to: std::net::SocketAddr = "127.0.0.1:11".parse().unwrap();
            let _ = socket.connect(&to.into());
        }
        // The SYNs reach the input hook in a softirq: wait for them
        // (well before the first retransmission, at 1 s).
        let start = std::time::Instant::now();
        let mut one = faults.packets(&handles[2..]).unwrap();
        while one < 2 && start.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(2));
            one = faults.packets(&handles[2..]).unwrap();
        }
        let all = faults.counts().unwrap();
        (one, all, handles[2])
    });
    assert_eq!(one, 2);
    assert_eq!(all.len(), 3);
    assert_eq!(all[&third], 2);
    assert_eq!(all.values().sum::<u64>(), 2);
}

#[test]
fn a_refusal_names_the_message() {
    in_fresh_netns(|| {
        let mut faults = Faults::open().unwrap();
        faults.install(&[]).unwrap();
        let err = faults.remove(&[12345]).all().unwrap_err();
        assert!(err.to_string().contains("removing rule 12345"), "{err}");
    });
}
