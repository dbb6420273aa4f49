//! Each action's one definition, read back through everything derived from
//! it: the parser builds what the README writes, the timeline names it by
//! its keyword, `hangup check`'s hints list the modifiers it takes, and the
//! JSON Schema and the README describe it. A new action that is defined
//! but not wired into one of them fails here, by name.

use std::path::Path;

use super::*;
use crate::model::Side;
use crate::suite::action::{ActionDef, JUDGING, MODIFIERS, catalog};

/// A suite with one case where `side` runs `step`, and what makes the step
/// meaningful: a listening server and a connected client (faults name a
/// port), a program for `signal` and the checks that look into it, two
/// hosts for `cut`, a fault for `lift` and `taken`, another side's mark
/// for `wait`.
fn suite_with(def: &ActionDef, side: Side, step: &str) -> String {
    let mut text = String::new();
    let program = matches!(def.keyword, "signal" | "released" | "log" | "syscall");
    if program {
        text.push_str("[program]\nrun = [\"sleep\", \"5\"]\nport = 8080\n\n");
    }
    text.push_str("[[case]]\nname = \"a\"\n");
    if def.keyword == "cut" {
        text.push_str("topology = \"two_hosts\"\n");
    }
    let mut own = Vec::new();
    if program && side == Side::Client && def.keyword != "connect" {
        own.push("{ connect = 8080 }");
    }
    if !program {
        let mut server = vec!["{ listen = 8080 }"];
        if def.keyword == "wait" {
            server.push("{ mark = \"label\" }");
        }
        if side == Side::Server {
            own = if def.keyword == "listen" {
                vec![]
            } else {
                vec!["{ listen = 8081 }"]
            };
        } else {
            if side == Side::Client && def.keyword != "connect" {
                own.push("{ connect = 8080 }");
            }
            text.push_str(&format!("server = [{}]\n", server.join(", ")));
        }
        if side == Side::Server && def.keyword == "wait" {
            text.push_str("client = [{ mark = \"label\" }]\n");
        }
    }
    if matches!(def.keyword, "lift" | "taken") {
        own.push("{ drop = \"client\", name = \"pause\" }");
    }
    own.push(step);
    text.push_str(&format!("{side} = [\n  {},\n]\n", own.join(",\n  ")));
    text
}

/// The side a definition is tried on: the client if it may take it, else
/// the first it names (the proxy then says `on`).
fn side_of(def: &ActionDef) -> Side {
    if def.sides.contains(&Side::Client) {
        Side::Client
    } else {
        def.sides[0]
    }
}

/// `written` with what a required modifier needs, if it does not say it.
fn with_required(def: &ActionDef, written: &str) -> String {
    let mut step = written.to_string();
    for uses in def.modifiers.iter().filter(|m| m.required.is_some()) {
        if !written.contains(&format!("{} =", uses.keyword)) {
            let sample = match uses.keyword {
                "times" => "2",
                "by" => "\"200ms\"",
                "flags" => "\"FIN\"",
                other => panic!("no sample value for the required modifier `{other}`"),
            };
            step.push_str(&format!(", {} = {sample}", uses.keyword));
        }
    }
    step
}

fn parsed(text: &str) -> Suite {
    match parse_suite(Path::new("suites/t.toml"), text.as_bytes()) {
        Ok(suite) => suite,
        Err(err) => panic!("{text}\n\ndid not parse: {err}"),
    }
}

/// The last step of `side`'s script in the suite's one case.
fn last_step(suite: &Suite, side: Side) -> &crate::suite::Step {
    let script = suite.cases[0]
        .scripts
        .iter()
        .find(|s| s.side == side)
        .expect("the side's script");
    script.steps.last().expect("its step")
}

/// The problems of a suite expected not to parse.
fn problems_of(text: &str) -> Vec<String> {
    match parse_suite(Path::new("suites/t.toml"), text.as_bytes()) {
        Ok(_) => panic!("{text}\n\nparsed; expected a problem"),
        Err(SuiteError::Invalid { diagnostics, .. }) => {
            diagnostics.into_iter().map(|d| d.message).collect()
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn every_way_the_readme_writes_an_action_builds_it_and_the_timeline_names_it() {
    let mut shown_as: Vec<(String, &str)> = Vec::new();
    for def in catalog() {
        let side = side_of(def);
        for written in def.written.split("` / `") {
            let mut step = with_required(def, written);
            if side == Side::Proxy && def.on_connection {
                step.push_str(", on = \"client\"");
            }
            let text = suite_with(def, side, &format!("{{ {step} }}"));
            let suite = parsed(&text);
            let action = &last_step(&suite, side).action;
            assert_eq!(action.keyword(), def.keyword, "{text}");
            let shown = action.to_string();
            assert!(
                !shown.is_empty() && !shown.contains('{'),
                "`{written}` is shown as {shown:?}"
            );
            if let Some((_, other)) = shown_as
                .iter()
                .find(|(s, k)| *s == shown && *k != def.keyword)
            {
                panic!(
                    "`{}` and `{other}` are both shown as {shown:?}",
                    def.keyword
                );
            }
            shown_as.push((shown, def.keyword));
        }
        if def.bare {
            let text = suite_with(def, side, &format!("\"{}\"", def.keyword));
            let suite = parsed(&text);
            assert_eq!(last_step(&suite, side).action.keyword(), def.keyword);
        }
    }
}

#[test]
fn a_modifier_an_action_does_not_take_is_refused_with_the_ones_it_does() {
    for def in catalog() {
        let side = side_of(def);
        let Some(foreign) = MODIFIERS
            .iter()
            .map(|m| m.keyword)
            .find(|m| !def.takes(m) && !JUDGING.contains(m) && *m != "on")
        else {
            continue;
        };
        let written = def.written.split("` / `").next().expect("one way");
        let mut step = with_required(def, written);
        if side == Side::Proxy && def.on_connection {
            step.push_str(", on = \"client\"");
        }
        step.push_str(&format!(", {foreign} = 1"));
        let text = suite_with(def, side, &format!("{{ {step} }}"));
        let problems = problems_of(&text);
        let refusal = problems
            .iter()
            .find(|p| p.starts_with(&format!("`{foreign}` does not apply to `{}`", def.keyword)))
            .unwrap_or_else(|| panic!("{text}\n\nno refusal of `{foreign}` in {problems:#?}"));
        for taken in def.modifiers.iter().map(|m| m.keyword) {
            assert!(
                refusal.contains(&format!("`{taken}`")),
                "{refusal:?} does not list `{taken}`, which `{}` takes",
                def.keyword
            );
        }
        if def.judged {
            assert!(refusal.contains("`expect`"), "{refusal:?}");
        }
    }
}

#[test]
fn a_required_modifier_left_out_is_asked_for() {
    for def in catalog() {
        for uses in def.modifiers.iter().filter(|m| m.required.is_some()) {
            let side = side_of(def);
            // The written form without the required key, and nothing else
            // it requires.
            let written = def.written.split("` / `").next().expect("one way");
            let bare_value = written
                .split(", ")
                .filter(|part| !part.starts_with(&format!("{} =", uses.keyword)))
                .collect::<Vec<_>>()
                .join(", ");
            let mut step = bare_value;
            for other in def.modifiers.iter().filter(|m| m.required.is_some()) {
                if other.keyword != uses.keyword && !step.contains(&format!("{} =", other.keyword))
                {
                    step = with_required(def, &step);
                }
            }
            let text = suite_with(def, side, &format!("{{ {step} }}"));
            let problems = problems_of(&text);
            let wanted = format!("expected `{}` with `{}`", uses.keyword, def.keyword);
            assert!(
                problems.iter().any(|p| p.starts_with(&wanted)),
                "{text}\n\nno {wanted:?} in {problems:#?}"
            );
        }
    }
}

#[test]
fn the_schema_and_the_readme_describe_every_action_and_modifier() {
    let schema: serde_json::Value =
        serde_json::from_str(&crate::suite::schema::json_schema()).expect("the schema is JSON");
    let properties = &schema["$defs"]["step"]["properties"];
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for def in catalog() {
        let described = properties[def.keyword]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("the schema has no described `{}`", def.keyword));
        // The schema starts its description with a capital.
        assert!(
            described.contains(&def.summary[1..]),
            "the schema's `{}` does not say its summary: {described:?}",
            def.keyword
        );
        assert!(
            readme.contains(&format!("| `{}` |", def.written)),
            "the README has no row for `{}`",
            def.written
        );
    }
    for modifier in MODIFIERS {
        assert!(
            properties[modifier.keyword]["description"].is_string(),
            "the schema has no described modifier `{}`",
            modifier.keyword
        );
        assert!(
            readme.contains(&format!("| `{}` | {}", modifier.keyword, modifier.summary)),
            "the README has no row for the modifier `{}`",
            modifier.keyword
        );
    }
}
