//! "How to read a ladder": the page's key to the ladder's notation.
//!
//! A reader who had never seen hangup read S2's page and answered who
//! closed first, what the server's write met and why the next one failed
//! with EPIPE, but had to guess what `#3`, `[CLOSE_WAIT]`, "(on the way)",
//! `win 64` and the row times meant (README, "Can a newcomer read it?"). The ladder's
//! texts are the terminal timeline's, written by `report::timeline`; this
//! key says what each kind of text is, once per page.

use maud::{Markup, html};

/// The key, folded under its title so that it costs a reader nothing once
/// known.
pub(super) fn legend() -> Markup {
    html! {
        details.legend {
            summary { "How to read a ladder" }
            dl {
                dt { "Rows" }
                dd { "Time runs down, in milliseconds from the case's start (left column). Rows are in the order things happened, not to scale: a long quiet stretch is folded into a " i { "⋯ 200 ms later ⋯" } " line." }
                dt { "Arrows" }
                dd { "One TCP segment the case's capture saw, from its sender to its receiver: its flags (SYN, FIN, RST, PSH, ACK), " code { "seq" } " and " code { "ack" } " counted from each side's first sequence number (its SYN is 0), " code { "win" } " the window field as the segment carries it (unscaled: after the handshake the kernel multiplies it by the scale both sides agreed), and the bytes of data. A segment a fault dropped or rejected stops half way, at an X naming the fault." }
                dt { code { "#5 recv (timeout 200 ms) -> EAGAIN (201 ms)" } }
                dd { "A call that side's script made: its 5th step, counted in that side's list in the suite file (sleeps and waits count too, so numbers skip, and the two sides each have a #5), written at the time the call " em { "began" } ", then what the kernel returned (an errno name, in red, or what it did) and how long the call took. A read that timed out after 201 ms is written where it began, 201 ms before what followed it." }
                dt { code { "[CLOSE_WAIT]" } }
                dd { "That side's TCP state as the kernel reported it to a check (its socket table; " code { "via TCP_INFO" } ": read from the socket itself). " code { "(on the way)" } ": a state a waiting check saw before the one it waited for. " code { "[gone]" } ": the kernel holds no socket for the connection any more." }
                dt { code { "mark \"client_closed\"" } }
                dd { "A named point a script set, for later checks to measure from." }
                dt { code { "stdout| ..." } ", " code { "traced writev(fd 7) = EPIPE" } }
                dd { "A line the program under test printed, and a system call it made (when the case traces it), with the kernel's answer." }
                dt { "Other lines" }
                dd { "What a check observed, e.g. " code { "first FIN: the client's ..." } " or " code { "sent: 1 RST segments ..." } ". The failing step, when there is one, is underlined in red, with what it expected and what it observed written under it (and in the box above the ladder). A line cut with … is whole in its tooltip: hover it, or read it in timeline.txt." }
            }
        }
    }
}
