//! Reading one step: its action, its modifiers, and what the action's
//! catalog entry ([`crate::suite::action::CATALOG`]) allows of them.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Reader;
use super::raw::{RawExpect, RawPayload, RawStep, RawStepTable, parse_outcome};
use crate::model::{Link, Outcome, PollEvents, Reject, Side, TcpFlags, Verdict};
use crate::sandbox::topology::Cut;
use crate::suite::action::{self, ActionDef, CATALOG, JUDGING};
use crate::suite::limits::{
    MAX_DELAY, MAX_READ_BYTES, MAX_SEND_BYTES, MAX_STEPS_PER_CASE, bytes_in_words,
};
use crate::suite::{
    Action, Check, Control, Expect, Fault, HostCut, Lift, LineCount, Loop, Pattern, Payload,
    Segments, SocketCall, Step,
};

/// A step's table as read: the serde-readable keys, and a `loop`'s body,
/// which is read as steps of its own.
pub(super) struct RawParts<'v, 'a> {
    table: RawStepTable,
    body: Option<&'v Spanned<DeValue<'a>>>,
    /// Keys whose value was refused (already reported): not missing.
    refused: Vec<String>,
}

impl<'a> Reader<'a> {
    /// The steps of one script (or of a loop's body, with `in_loop`).
    pub(super) fn steps(
        &mut self,
        side: Side,
        value: &Spanned<DeValue<'a>>,
        in_loop: bool,
    ) -> Vec<Step> {
        let what = if in_loop {
            "`loop`".to_string()
        } else {
            format!("`{side}`")
        };
        let Some(array) = value.get_ref().as_array() else {
            self.problem(
                value.span(),
                format!(
                    "expected {what} to be an array of steps, found {}",
                    value.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        // An empty script would pass the "a client or a server" check of
        // `Reader::case` while doing nothing.
        if array.is_empty() {
            self.problem(
                value.span(),
                format!("expected at least one step in {what}, found none"),
            );
        }
        // Counted before any is read, so a huge script is refused without
        // building its steps, and reported once (where the case passes the
        // limit).
        let before = self.case_steps;
        self.case_steps = before.saturating_add(array.len());
        if self.case_steps > MAX_STEPS_PER_CASE {
            if before <= MAX_STEPS_PER_CASE {
                self.problem(
                    value.span(),
                    format!(
                        "expected at most {MAX_STEPS_PER_CASE} steps in a case (the steps inside loops included), found {} by the end of {what}",
                        self.case_steps
                    ),
                );
            }
            return Vec::new();
        }
        let mut steps = Vec::new();
        for item in array.iter() {
            let Some(raw) = self.raw_step(item) else {
                continue;
            };
            if let Some(step) = self.step(side, raw, item, in_loop) {
                steps.push(step);
            }
        }
        steps
    }

    /// Deserializes a step table one key at a time, so that a typo in one
    /// key does not hide a bad value in the next (serde stops a table at
    /// its first error). When some keys fail but the action parsed, the
    /// keys that did parse are still returned to be checked against it;
    /// without the action there is nothing to check them against.
    fn raw_step<'v>(&mut self, item: &'v Spanned<DeValue<'a>>) -> Option<RawParts<'v, 'a>> {
        let Some(table) = item.get_ref().as_table() else {
            return self.value::<RawStep>(item).map(|step| RawParts {
                table: step.0,
                body: None,
                refused: Vec::new(),
            });
        };
        let before = self.count;
        let mut step = RawStepTable::default();
        let mut body = None;
        let mut has_action = false;
        let mut refused = Vec::new();
        for (key, value) in table {
            if key.get_ref() == "loop" {
                body = Some(value);
            }
            let mut one = DeTable::new();
            one.insert(key.clone(), value.clone());
            let one = Spanned::new(item.span(), DeValue::Table(one));
            if let Some(RawStep(part)) = self.value::<RawStep>(&one) {
                has_action |= action::definition(key.get_ref()).is_some();
                step.merge(part);
            } else {
                refused.push(key.get_ref().to_string());
            }
        }
        (self.count == before || has_action).then_some(RawParts {
            table: step,
            body,
            refused,
        })
    }

    fn step(
        &mut self,
        side: Side,
        parts: RawParts<'_, 'a>,
        item: &Spanned<DeValue<'a>>,
        in_loop: bool,
    ) -> Option<Step> {
        let RawParts {
            table: mut raw,
            body,
            refused,
        } = parts;
        let span = item.span();
        let before = self.count;
        let mut chosen: Vec<(&'static str, Range<usize>)> = Vec::new();
        let mut action = None;
        macro_rules! take {
            ($field:ident, $name:literal, |$v:ident| $make:expr) => {
                if let Some(spanned) = raw.$field.take() {
                    // A bare step ("accept") has no span of its own: use the step's.
                    let at = Some(spanned.span()).filter(|s| !s.is_empty());
                    chosen.push(($name, at.unwrap_or_else(|| span.clone())));
                    let $v = spanned.into_inner();
                    action = Some($make);
                }
            };
        }
        use Action::{Check as K, Control as C, Socket as S};
        take!(listen, "listen", |v| S(SocketCall::Listen {
            addr: v.0,
            backlog: 128
        }));
        take!(accept, "accept", |_v| S(SocketCall::Accept {
            timeout: None
        }));
        take!(connect, "connect", |v| S(SocketCall::Connect {
            addr: v.0,
            timeout: None,
            from: None,
            nonblocking: false,
            again: false,
        }));
        take!(send, "send", |v| S(SocketCall::Send {
            payload: match v {
                RawPayload::Text(text) => Payload::Text { text, repeat: 1 },
                RawPayload::Size(n) => Payload::Size(n),
            },
            timeout: None
        }));
        take!(recv, "recv", |_v| S(SocketCall::Recv {
            max: 65536,
            timeout: None
        }));
        take!(recv_until, "recv_until", |v| S(SocketCall::RecvUntil {
            until: v,
            timeout: None
        }));
        take!(shutdown, "shutdown", |v| S(SocketCall::Shutdown {
            how: v.0
        }));
        take!(close, "close", |_v| S(SocketCall::Close));
        take!(abort, "abort", |_v| S(SocketCall::Abort));
        take!(set, "set", |v| S(SocketCall::Set(v.into_options())));
        take!(so_error, "so_error", |_v| S(SocketCall::SoError));
        take!(poll, "poll", |v| S(SocketCall::Poll {
            events: v.0,
            timeout: None
        }));
        take!(sleep, "sleep", |v| C(Control::Sleep(v.0)));
        take!(mark, "mark", |v| C(Control::Mark(v)));
        take!(wait, "wait", |v| C(Control::Wait {
            label: v,
            timeout: None
        }));
        take!(loop_, "loop", |_v| C(Control::Loop(Loop {
            body: Vec::new(),
            times: 0,
            until: Vec::new(),
        })));
        take!(signal, "signal", |v| C(Control::Signal(v.0)));
        take!(drop, "drop", |v| C(Control::Fault(Fault {
            from: v.0,
            to: None,
            flags: None,
            data: None,
            probability: None,
            verdict: Verdict::Drop,
            name: None,
        })));
        take!(reject, "reject", |v| C(Control::Fault(Fault {
            from: v.0,
            to: None,
            flags: None,
            data: None,
            probability: None,
            verdict: Verdict::Reject {
                with: Reject::TcpReset
            },
            name: None,
        })));
        take!(delay, "delay", |v| C(Control::Fault(Fault {
            from: v.0,
            to: None,
            flags: None,
            data: None,
            probability: None,
            verdict: Verdict::Delay {
                by: Duration::ZERO,
                jitter: Duration::ZERO,
            },
            name: None,
        })));
        take!(sent, "sent", |v| K(Check::Sent {
            segments: Segments {
                from: v.0,
                to: None,
                flags: None,
                data: None,
                window: None,
                since: None,
            },
            packets: LineCount::AtLeastOne,
            within: None,
        }));
        take!(first, "first", |v| K(Check::First {
            from: v.0,
            flags: TcpFlags(0),
            within: None,
        }));
        take!(taken, "taken", |v| K(Check::Taken {
            name: v,
            packets: LineCount::AtLeastOne,
            within: None,
        }));
        take!(cut, "cut", |v| C(Control::Cut(HostCut {
            side: v.0,
            how: Cut::LinkDown,
            name: None,
        })));
        take!(lift, "lift", |v| C(Control::Lift(if v == "all" {
            Lift::All
        } else {
            Lift::Named(v)
        })));
        take!(released, "released", |_v| K(Check::Released {
            within: None
        }));
        take!(log, "log", |v| K(Check::Log {
            pattern: Pattern(v.0),
            lines: LineCount::AtLeastOne,
            within: None,
        }));
        take!(syscall, "syscall", |v| K(Check::Syscall {
            which: v.0,
            results: Vec::new(),
            calls: LineCount::AtLeastOne,
            within: None,
        }));
        take!(accept_queue, "accept_queue", |v| K(Check::AcceptQueue {
            expected: v.into_expected(),
            within: None
        }));
        take!(state, "state", |v| K(Check::State {
            expected: v.into_expected(),
            within: None
        }));
        let mut action = match (action, chosen.len()) {
            (Some(action), 1) => action,
            (_, 0) => {
                let names: Vec<&str> = CATALOG.iter().map(|d| d.keyword).collect();
                self.problem(
                    span,
                    format!(
                        "expected one action in this step, found none; actions are {}",
                        names.join(", ")
                    ),
                );
                return None;
            }
            (_, _) => {
                // Only a table holds two actions: name them in file order
                // and point at the key of the second, the one to remove.
                let table = item.get_ref().as_table();
                let mut keys: Vec<(&str, Range<usize>)> = chosen
                    .iter()
                    .map(|(name, at)| {
                        let key = table.and_then(|t| t.get_key_value(*name));
                        (*name, key.map_or_else(|| at.clone(), |(k, _)| k.span()))
                    })
                    .collect();
                keys.sort_by_key(|(_, at)| at.start);
                let names: Vec<_> = keys.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.problem(
                    keys[1].1.clone(),
                    format!(
                        "expected one action per step, found {}",
                        names.join(" and ")
                    ),
                );
                return None;
            }
        };
        let def = action.definition();
        let at = chosen[0].1.clone();
        let parts = RawParts {
            table: raw,
            body,
            refused,
        };
        self.modifiers(def, &mut action, &parts, side, &at);
        let mut raw = parts.table;
        if let Action::Check(Check::Syscall { results, .. }) = &mut action {
            // The outcomes the program's calls are counted by, not a
            // judgement of a call of the side's own.
            if let Some(expect) = raw.expect.take() {
                *results = self.outcomes(expect);
            }
        }
        let link = self.link(side, def, raw.on.clone(), &at);
        if !def.sides.contains(&side) {
            self.problem(
                at.clone(),
                format!(
                    "`{}` is for {}, found it in the {side} script",
                    def.keyword,
                    def.sides_in_words()
                ),
            );
        }
        match &action {
            Action::Check(Check::State { expected, .. }) if expected.is_empty() => {
                self.problem(
                    at,
                    "expected a state for `client`, `server`, `proxy_client` or `proxy_server`, found none",
                );
            }
            Action::Control(Control::Loop(_)) if in_loop => {
                self.problem(
                    at,
                    "expected a step, found a `loop` inside a `loop`: loops do not nest",
                );
            }
            _ => {}
        }
        let expect = self.expectation(def, &action, &raw);
        (self.count == before).then(|| Step {
            action,
            expect,
            location: self.location(span.start),
            source: self.text[span.clone()].to_string(),
            span,
            link,
        })
    }

    /// Applies each modifier the step has to its action, or reports it
    /// where the action's definition does not take it.
    fn modifiers(
        &mut self,
        def: &ActionDef,
        action: &mut Action,
        parts: &RawParts<'_, 'a>,
        side: Side,
        at: &Range<usize>,
    ) {
        let (raw, body, refused) = (&parts.table, parts.body, &parts.refused);
        let keyword = def.keyword;
        let takes: Vec<String> = def
            .modifiers
            .iter()
            .chain(if def.judged { JUDGING } else { &[] })
            .map(|m| format!("`{m}`"))
            .collect();
        let hint = if takes.is_empty() {
            ", which takes no other key".to_string()
        } else {
            format!(", expected one of {}", takes.join(", "))
        };
        // The judging modifiers and `on` have messages of their own.
        for (name, at) in raw.modifiers_present() {
            if !def.modifiers.contains(&name) && !JUDGING.contains(&name) && name != "on" {
                self.problem(at, format!("`{name}` does not apply to `{keyword}`{hint}"));
            }
        }
        use Action::{Check as K, Control as C, Socket as S};
        if let Some(timeout) = &raw.timeout {
            let t = Some(timeout.get_ref().0);
            match action {
                S(SocketCall::Accept { timeout, .. })
                | S(SocketCall::Connect { timeout, .. })
                | S(SocketCall::Send { timeout, .. })
                | S(SocketCall::Recv { timeout, .. })
                | S(SocketCall::RecvUntil { timeout, .. })
                | S(SocketCall::Poll { timeout, .. })
                | C(Control::Wait { timeout, .. }) => *timeout = t,
                _ => {}
            }
        }
        if let (
            Some(within),
            K(
                Check::State { within: w, .. }
                | Check::Log { within: w, .. }
                | Check::Syscall { within: w, .. }
                | Check::Taken { within: w, .. }
                | Check::Sent { within: w, .. }
                | Check::First { within: w, .. }
                | Check::Released { within: w }
                | Check::AcceptQueue { within: w, .. },
            ),
        ) = (&raw.within, &mut *action)
        {
            *w = Some(within.get_ref().0);
        }
        if let K(
            Check::Log { lines, .. }
            | Check::Syscall { calls: lines, .. }
            | Check::Taken { packets: lines, .. }
            | Check::Sent { packets: lines, .. },
        ) = action
        {
            match (&raw.count, &raw.at_most) {
                (Some(_), Some(both)) => self.problem(
                    both.span(),
                    format!(
                        "expected `count` or `at_most` with `{}`, found both",
                        def.keyword
                    ),
                ),
                (Some(count), None) => *lines = LineCount::Exactly(*count.get_ref()),
                (None, Some(at_most)) => *lines = LineCount::AtMost(*at_most.get_ref()),
                (None, None) => {}
            }
        }
        if let Some(repeat) = &raw.repeat {
            match action {
                S(SocketCall::Send {
                    payload: Payload::Text { text, .. },
                    ..
                }) if too_much_to_send(text.len(), *repeat.get_ref()) => self.problem(
                    repeat.span(),
                    format!(
                        "expected at most {} to send in all, found {} copies of {} bytes",
                        bytes_in_words(MAX_SEND_BYTES),
                        repeat.get_ref(),
                        text.len()
                    ),
                ),
                // Like `send = 0`: a step that sends nothing is a mistake.
                S(SocketCall::Send {
                    payload: Payload::Text { repeat: r, .. },
                    ..
                }) if *repeat.get_ref() > 0 => *r = *repeat.get_ref(),
                S(SocketCall::Send {
                    payload: Payload::Text { .. },
                    ..
                }) => self.problem(
                    repeat.span(),
                    "expected `repeat` of at least 1 copy, found 0",
                ),
                S(SocketCall::Send { .. }) => self.problem(
                    repeat.span(),
                    "`repeat` copies text, found it with a number of filler bytes: write the total size instead",
                ),
                _ => {}
            }
        }
        if let (Some(max), S(SocketCall::Recv { max: m, .. })) = (&raw.max, &mut *action) {
            match *max.get_ref() {
                0 => self.problem(max.span(), "expected `max` of at least 1 byte, found 0"),
                n if n > MAX_READ_BYTES => self.problem(
                    max.span(),
                    format!(
                        "expected `max` of at most {}, found {n}",
                        bytes_in_words(MAX_READ_BYTES)
                    ),
                ),
                n => *m = n,
            }
        }
        if let (Some(from), S(SocketCall::Connect { from: f, .. })) = (&raw.from, &mut *action) {
            if *from.get_ref() > 0 {
                *f = Some(*from.get_ref());
            } else {
                self.problem(
                    from.span(),
                    "expected a local port from 1 to 65535, found 0",
                );
            }
        }
        if let S(SocketCall::Connect {
            nonblocking, again, ..
        }) = action
        {
            *nonblocking = raw.nonblocking.as_ref().is_some_and(|v| *v.get_ref());
            *again = raw.again.as_ref().is_some_and(|v| *v.get_ref());
        }
        if let (Some(backlog), S(SocketCall::Listen { backlog: b, .. })) =
            (&raw.backlog, &mut *action)
        {
            *b = *backlog.get_ref();
        }
        if let S(SocketCall::Poll { events, .. }) = action {
            let asked: Vec<String> = events.names();
            let always = asked
                .iter()
                .find(|n| !PollEvents::REQUESTABLE.contains(&n.as_str()));
            if let Some(name) = always {
                self.problem(
                    at.clone(),
                    format!(
                        "expected events to poll for among {}, found `{name}`, which poll(2) always reports",
                        PollEvents::REQUESTABLE.join(", ")
                    ),
                );
            }
        }
        let sender = match action {
            C(Control::Fault(fault)) => {
                Some((fault.from, &mut fault.to, &mut fault.flags, &mut fault.data))
            }
            K(Check::Sent { segments, .. }) => Some((
                segments.from,
                &mut segments.to,
                &mut segments.flags,
                &mut segments.data,
            )),
            _ => None,
        };
        if let Some((from, to, flags, data)) = sender {
            *to = raw.to.as_ref().map(|to| to.get_ref().0);
            if *to == Some(from) {
                if let Some(to) = &raw.to {
                    self.problem(
                        to.span(),
                        format!(
                            "expected `to` to name the side the {from} sends to, found the {from} itself"
                        ),
                    );
                }
            }
            *flags = raw.flags.as_ref().map(|f| f.get_ref().0);
            *data = raw.data.as_ref().map(|d| *d.get_ref());
        }
        if let K(Check::Sent { segments, .. }) = action {
            segments.window = raw.window.as_ref().map(|w| *w.get_ref());
            segments.since = raw.since.as_ref().map(|s| s.get_ref().clone());
        }
        if let K(Check::First { flags, .. }) = action {
            match &raw.flags {
                Some(f) => *flags = f.get_ref().0,
                None if refused.iter().any(|key| key == "flags") => {}
                None => self.problem(
                    at.clone(),
                    "expected `flags` with `first` (the first segment with which flags: \"FIN\", \"RST\"), found none",
                ),
            }
        }
        if let C(Control::Fault(fault)) = action {
            if let Some(p) = &raw.probability {
                let p_value = *p.get_ref();
                if p_value > 0.0 && p_value <= 1.0 {
                    fault.probability = Some(p_value);
                } else {
                    self.problem(
                        p.span(),
                        format!("expected `probability` above 0 and at most 1, found {p_value}"),
                    );
                }
            }
            if let Some(name) = &raw.name {
                let text = name.get_ref();
                if text.is_empty() || text == "all" || text.len() > 64 {
                    self.problem(
                        name.span(),
                        format!(
                            "expected a fault's `name` of 1 to 64 characters other than \"all\" (which `lift` takes as every fault), found {text:?}"
                        ),
                    );
                } else {
                    fault.name = Some(text.clone());
                }
            }
            if let Verdict::Delay { by, jitter } = &mut fault.verdict {
                match &raw.by {
                    Some(b) if b.get_ref().0 > Duration::ZERO && b.get_ref().0 <= MAX_DELAY => {
                        *by = b.get_ref().0;
                    }
                    Some(b) => self.problem(
                        b.span(),
                        format!(
                            "expected `by` above 0 and at most {}, found {}",
                            humantime::format_duration(MAX_DELAY),
                            humantime::format_duration(b.get_ref().0)
                        ),
                    ),
                    None if refused.iter().any(|key| key == "by") => {}
                    None => self.problem(
                        at.clone(),
                        "expected `by` with `delay` (how long each packet is held, e.g. \"200ms\"), found none",
                    ),
                }
                if let Some(j) = &raw.jitter {
                    if j.get_ref().0 <= *by || raw.by.is_none() {
                        *jitter = j.get_ref().0;
                    } else {
                        self.problem(
                            j.span(),
                            format!(
                                "expected `jitter` at most `by` ({}), found {}: a packet cannot arrive before it was sent",
                                humantime::format_duration(*by),
                                humantime::format_duration(j.get_ref().0)
                            ),
                        );
                    }
                }
            }
            if let (Some(with), Verdict::Reject { with: how }) = (&raw.with, &mut fault.verdict) {
                match Reject::parse(with.get_ref()) {
                    Ok(kind) => *how = kind,
                    Err(why) => self.problem(with.span(), why),
                }
            }
        }
        if let C(Control::Cut(cut)) = action {
            if let Some(with) = &raw.with {
                match with.get_ref().as_str() {
                    "link_down" => cut.how = Cut::LinkDown,
                    "blackhole" => cut.how = Cut::Blackhole,
                    other => self.problem(
                        with.span(),
                        format!("expected how to cut a host off, `link_down` (the default) or `blackhole`, found `{other}`"),
                    ),
                }
            }
            if let Some(name) = &raw.name {
                let text = name.get_ref();
                if text.is_empty() || text == "all" || text.len() > 64 {
                    self.problem(
                        name.span(),
                        format!(
                            "expected a fault's `name` of 1 to 64 characters other than \"all\" (which `lift` takes as every fault), found {text:?}"
                        ),
                    );
                } else {
                    cut.name = Some(text.clone());
                }
            }
        }
        if let C(Control::Loop(looped)) = action {
            match &raw.times {
                Some(times) if *times.get_ref() > 0 => looped.times = *times.get_ref(),
                Some(times) => self.problem(
                    times.span(),
                    "expected `times` of at least 1 round, found 0",
                ),
                // A `times` whose value was refused is reported as such.
                None if refused.iter().any(|key| key == "times") => {}
                None => {
                    self.problem(
                        at.clone(),
                        "expected `times` with `loop`: every loop is bounded, found none",
                    );
                }
            }
            if let Some(until) = raw.until.clone() {
                looped.until = self.outcomes(until);
            }
            if let Some(body) = body {
                looped.body = self.steps(side, body, true);
            }
        }
    }

    /// Which connection a step acts on. The client and server have one
    /// each; the proxy has two, so its steps on a connection must say which
    /// with `on = "client"` (the one it accepted) or `on = "server"`.
    fn link(
        &mut self,
        side: Side,
        def: &ActionDef,
        on: Option<Spanned<super::raw::OnValue>>,
        at: &Range<usize>,
    ) -> Link {
        let keyword = def.keyword;
        match (side, on) {
            (Side::Client, None) => Link::Connected,
            (Side::Server, None) => Link::Accepted,
            (Side::Client | Side::Server, Some(on)) => {
                self.problem(
                    on.span(),
                    format!("`on` is for the proxy's steps: the {side} has one connection"),
                );
                if side == Side::Client {
                    Link::Connected
                } else {
                    Link::Accepted
                }
            }
            (Side::Proxy, Some(on)) if def.on_connection => on.into_inner().0,
            (Side::Proxy, Some(on)) => {
                self.problem(
                    on.span(),
                    format!("`on` does not apply to `{keyword}`: it acts on no connection"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) if def.on_connection => {
                self.problem(
                    at.clone(),
                    format!("expected `on = \"client\"` or `on = \"server\"` with `{keyword}`: the proxy holds two connections"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) => match def.keyword {
                "connect" => Link::Connected,
                _ => Link::Accepted,
            },
        }
    }

    fn expectation(
        &mut self,
        def: &ActionDef,
        action: &Action,
        raw: &RawStepTable,
    ) -> Option<Expect> {
        let keyword = def.keyword;
        if !def.judged {
            for (name, span) in [
                ("expect", raw.expect.as_ref().map(Spanned::span)),
                ("bytes", raw.bytes.as_ref().map(Spanned::span)),
                ("after", raw.after.as_ref().map(Spanned::span)),
                ("longer_than", raw.longer_than.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.problem(
                        span,
                        format!(
                            "`{name}` does not apply to `{keyword}`: it has no result to judge"
                        ),
                    );
                }
            }
            return None;
        }
        let revents = match (&raw.revents, action) {
            (Some(revents), Action::Socket(SocketCall::Poll { .. })) => Some(revents.get_ref().0),
            _ => None,
        };
        let matches = match (&raw.matches, action) {
            (
                Some(pattern),
                Action::Socket(SocketCall::Recv { .. } | SocketCall::RecvUntil { .. }),
            ) => Some(Pattern(pattern.get_ref().0.clone())),
            _ => None,
        };
        if raw.expect.is_none()
            && raw.bytes.is_none()
            && raw.after.is_none()
            && raw.longer_than.is_none()
            && revents.is_none()
            && matches.is_none()
        {
            return None;
        }
        let mut out = action.default_expectation();
        if let Some(expect) = raw.expect.clone() {
            out.result = self.outcomes(expect);
        }
        out.bytes = raw.bytes.as_ref().map(|b| *b.get_ref());
        out.after = raw.after.as_ref().map(|a| a.get_ref().0);
        out.longer_than = raw.longer_than.as_ref().map(|a| a.get_ref().0);
        out.revents = revents;
        out.matches = matches;
        Some(out)
    }

    /// The outcomes an `expect` (or a loop's `until`) names, each unknown
    /// name reported at itself.
    fn outcomes(&mut self, expect: Spanned<RawExpect>) -> Vec<Outcome> {
        let span = expect.span();
        let names = match expect.into_inner() {
            RawExpect::One(name) => vec![Spanned::new(span, name)],
            RawExpect::Any(names) => names,
        };
        let mut out = Vec::new();
        for name in names {
            match parse_outcome(name.get_ref()) {
                Ok(outcome) => out.push(outcome),
                Err(why) => self.problem(name.span(), why),
            }
        }
        out
    }
}

/// Whether `copies` of `len` bytes of text exceed [`MAX_SEND_BYTES`]
/// (overflow included): the harness builds the whole payload in memory.
fn too_much_to_send(len: usize, copies: usize) -> bool {
    len.checked_mul(copies)
        .is_none_or(|total| total > MAX_SEND_BYTES)
}
