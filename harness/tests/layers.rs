//! Data flows one way through the library: each module may use only the
//! modules of lower layers (and its own), and no two files import each
//! other, directly or round a longer circle. This reads every source file
//! and fails on an import that reaches up, naming the file and line, and
//! on each circle, naming the files and what each takes from the next.
//!
//! A file that declares modules (`mod.rs`, `lib.rs`, `main.rs`, or `x.rs`
//! beside a folder `x/`) stands above them: it may use its own children
//! (it declares them, and re-exports what they own), and they may use it.
//! Any other pair of files that use each other is a circle: the piece they
//! share belongs in a file of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. `model` is the shared vocabulary; `sandbox`,
/// `fault` and `observe` talk to the kernel and know nothing of suites;
/// `suite` is the declarative model (it may ask the sandbox which sysctls
/// are allowed); `record` is the typed record of what happened, whose
/// events name a suite's calls and faults; `peer` performs a suite's socket
/// calls, `sut` runs its program under test and `verdict` judges its
/// expectations; `report` renders; `runner` drives all of them.
const LAYERS: &[&[&str]] = &[
    &["model"],
    &["sandbox", "fault", "observe"],
    &["suite"],
    &["record"],
    &["peer", "sut", "verdict"],
    &["report"],
    &["runner"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file of the crate, by its path under `src`, with its text.
fn crate_files() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file
                .strip_prefix(&src)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&file).expect("read source");
            (relative, text)
        })
        .collect()
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let mut reaching_up = Vec::new();
    let mut placed = 0;
    for (relative, text) in crate_files() {
        let module = relative
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = layer(&module) else {
            // lib.rs, main.rs and the binary's modules (cli, bench) sit on top.
            continue;
        };
        placed += 1;
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let used: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if let Some(theirs) = layer(&used) {
                    if theirs > own {
                        reaching_up.push(format!(
                            "{relative}:{}: `{module}` uses `{used}`, a layer above it",
                            number + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(placed > 10, "found only {placed} files in layers");
    assert!(reaching_up.is_empty(), "{reaching_up:#?}");
}

#[test]
fn no_two_files_import_each_other() {
    let circles = circles(&crate_files());
    assert!(
        circles.is_empty(),
        "import circles between files:\n{}",
        circles.join("\n")
    );
}

/// A circle planted in a made-up crate is found, named with what each
/// file takes from the next; a parent and the children it declares are
/// not one.
#[test]
fn a_planted_circle_is_found_and_a_parent_with_its_children_is_not() {
    let files: BTreeMap<String, String> = [
        ("lib.rs", "pub mod net;\npub mod model;\n"),
        ("model.rs", "pub struct Side;\n"),
        (
            "net/mod.rs",
            "mod codec;\nmod queue;\npub use codec::serialize;\npub struct Shared;\n",
        ),
        (
            "net/codec.rs",
            "use super::queue::{Queue, QUEUE};\nuse super::Shared;\npub fn serialize() {}\n",
        ),
        (
            "net/queue.rs",
            "// use super::codec::comment_only;\nuse crate::model::Side;\npub struct Queue;\npub const QUEUE: u16 = 7;\nfn f() { super::codec::serialize(); let _ = \"super::codec::in_a_string\"; }\n",
        ),
    ]
    .into_iter()
    .map(|(path, text)| (path.to_string(), text.to_string()))
    .collect();
    let found = circles(&files);
    assert_eq!(
        found,
        ["net/codec.rs -> net/queue.rs: QUEUE, Queue; net/queue.rs -> net/codec.rs: serialize"],
        "{found:#?}"
    );
    // Without the call back, no circle: a child using its parent's
    // `Shared`, and the parent re-exporting a child, are not one.
    let mut fixed = files.clone();
    fixed.insert(
        "net/queue.rs".into(),
        "use crate::model::Side;\npub struct Queue;\npub const QUEUE: u16 = 7;\n".into(),
    );
    assert_eq!(circles(&fixed), Vec::<String>::new());
}

/// A circle through a parent's re-export (`use crate::report::CaseReport`
/// where `report/mod.rs` has `pub use format::CaseReport`) is a circle
/// with the file that owns the name; what an inline test module or a raw
/// string names is not an import.
#[test]
fn a_circle_through_a_re_export_is_found_and_test_code_is_not_one() {
    let files: BTreeMap<String, String> = [
        ("lib.rs", "pub mod report;\n"),
        (
            "report/mod.rs",
            "pub mod diff;\nmod format;\nmod ladder;\npub use format::{CaseReport, Status};\n",
        ),
        ("report/format.rs", "use super::diff::Difference;\npub struct CaseReport;\n"),
        ("report/diff.rs", "use crate::report::CaseReport;\npub struct Difference;\n"),
        (
            "report/ladder.rs",
            "pub struct Rung;\nconst S: &str = r#\"use super::diff::Difference; \"quoted\"\"#;\n#[cfg(test)]\nmod tests {\n    use crate::report::diff::Difference;\n    fn f() { if true { let _ = 1; } }\n}\n",
        ),
    ]
    .into_iter()
    .map(|(path, text)| (path.to_string(), text.to_string()))
    .collect();
    let found = circles(&files);
    assert_eq!(
        found,
        [
            "report/diff.rs -> report/format.rs: CaseReport; report/format.rs -> report/diff.rs: Difference"
        ],
        "{found:#?}"
    );
    // The ladder's test imports diff, and diff importing the ladder makes
    // no circle.
    let mut more = files.clone();
    more.insert(
        "report/diff.rs".into(),
        "use super::ladder::Rung;\npub struct Difference;\n".into(),
    );
    assert_eq!(circles(&more), Vec::<String>::new());
}

/// The module path a file defines (`runner::case` for `runner/case.rs` or
/// `runner/case/mod.rs`; the crate root is empty), and which crate it is
/// of: the binary's (`main.rs` and the modules it declares) or the
/// library's.
fn module_of(file: &str, binary_modules: &BTreeSet<String>) -> (bool, Vec<String>) {
    let path = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        return (parts == ["main"], Vec::new());
    }
    let binary = parts
        .first()
        .is_some_and(|first| binary_modules.contains(first));
    (binary, parts)
}

/// The code of a file without comments and string literals, which may
/// name paths that are not imports.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            // A raw string, `r"..."` or `r#"..."#` (or `br`): skip it whole.
            ('r', Some('"' | '#')) if !ident_before(&chars, i) || raw_byte(&chars, i) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    // `r#ident`, a raw identifier.
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push_str("\"\"");
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal (not a lifetime): skip it whole.
            ('\'', _) if chars.get(i + 2) == Some(&'\'') || chars.get(i + 1) == Some(&'\\') => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_')
}

/// `br"..."`: the `r` of a raw byte string.
fn raw_byte(chars: &[char], i: usize) -> bool {
    i > 0 && chars[i - 1] == 'b' && !ident_before(chars, i - 1)
}

/// The code without its inline test modules (`#[cfg(test)] mod tests {
/// ... }`): what tests import is not part of the house's shape. Takes
/// code from [`code_only`], so braces in strings and comments are gone.
fn without_inline_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let opens = trimmed.strip_prefix("mod ").and_then(|m| {
            let name_end = m.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            m[name_end..].trim_start().starts_with('{').then_some(())
        });
        if opens.is_none() {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let open = after.find('{').unwrap_or(after.len());
        let mut depth = 0usize;
        let mut end = after.len();
        for (n, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + n + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every path the code names that starts at `crate`, `super` or `self`,
/// with `use` groups (`use super::{a::B, c}`) spread out, as lists of
/// segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == ':');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| rest.starts_with(p));
        if at_word && starts {
            let (found, end) = path_at(&bytes, i, Vec::new());
            out.extend(found);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The paths starting at `i`, under `prefix`; and where they end.
fn path_at(chars: &[char], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut segments = prefix;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            // A group: each item a path of its own under what came so far.
            let mut all = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (all, i + 1);
                }
                let (found, end) = path_at(chars, i, segments.clone());
                all.extend(found);
                if end <= i {
                    return (all, i + 1);
                }
                i = end;
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i == start {
            return (vec![segments], i);
        }
        segments.push(chars[start..i].iter().collect());
        let after: String = chars[i..chars.len().min(i + 2)].iter().collect();
        if after == "::" {
            i += 2;
        } else {
            // ` as alias` and the like end the path here.
            return (vec![segments], i);
        }
    }
}

/// Each circle of imports between files, as `a.rs -> b.rs: X, Y; b.rs ->
/// a.rs: Z`.
fn circles(files: &BTreeMap<String, String>) -> Vec<String> {
    // The binary's modules: what main.rs declares.
    let binary_modules: BTreeSet<String> = files
        .get("main.rs")
        .map(|main| {
            code_only(main)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("mod "))
                .map(|m| m.trim_end_matches(';').trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let modules: BTreeMap<(bool, Vec<String>), &String> = files
        .keys()
        .map(|file| (module_of(file, &binary_modules), file))
        .collect();
    let resolver = Resolver {
        modules: &modules,
        binary_modules: &binary_modules,
    };
    // What each file re-exports (`pub use child::Name`): the name, and the
    // file that owns it. A path through a parent's re-export is an import
    // of the file that owns the name.
    let mut reexports: BTreeMap<&String, BTreeMap<String, &String>> = BTreeMap::new();
    for (file, text) in files {
        for path in reexported_paths(&without_inline_tests(&code_only(text))) {
            if let Some((target, Some(name))) = resolver.resolve(file, &path) {
                if target != file {
                    reexports.entry(file).or_default().insert(name, target);
                }
            }
        }
    }
    // file -> file -> the names taken.
    let mut edges: BTreeMap<&String, BTreeMap<&String, BTreeSet<String>>> = BTreeMap::new();
    for (file, text) in files {
        let (_, own) = module_of(file, &binary_modules);
        for path in paths(&without_inline_tests(&code_only(text))) {
            let Some((mut target, name)) = resolver.resolve(file, &path) else {
                continue;
            };
            // Through re-exports to the file that owns the name (a few
            // hops at most; a re-export circle would be a compile error).
            for _ in 0..8 {
                match name.as_ref().and_then(|n| reexports.get(target)?.get(n)) {
                    Some(owner) if *owner != target => target = owner,
                    _ => break,
                }
            }
            let (_, theirs) = module_of(target, &binary_modules);
            // A file using its own children (or itself) is not an edge.
            if target == file || (theirs.len() > own.len() && theirs.starts_with(&own)) {
                continue;
            }
            let taken = name.unwrap_or_else(|| theirs.last().cloned().unwrap_or_default());
            edges
                .entry(file)
                .or_default()
                .entry(target)
                .or_default()
                .insert(taken);
        }
    }
    // Strongly connected components (Tarjan): each of more than one file
    // is a circle.
    let nodes: Vec<&String> = files.keys().collect();
    let index_of: BTreeMap<&String, usize> =
        nodes.iter().enumerate().map(|(i, f)| (*f, i)).collect();
    let next: Vec<Vec<usize>> = nodes
        .iter()
        .map(|f| {
            edges
                .get(f)
                .map(|to| to.keys().map(|t| index_of[t]).collect())
                .unwrap_or_default()
        })
        .collect();
    let components = tarjan(&next);
    let mut out = Vec::new();
    for component in components.into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<usize> = component.into_iter().collect();
        let mut parts = Vec::new();
        for &from in &members {
            for (to, names) in edges.get(nodes[from]).into_iter().flatten() {
                if members.contains(&index_of[to]) {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    parts.push(format!("{} -> {to}: {}", nodes[from], names.join(", ")));
                }
            }
        }
        out.push(parts.join("; "));
    }
    out
}

/// Resolves a path a file names to the file of the module it reaches.
struct Resolver<'a> {
    modules: &'a BTreeMap<(bool, Vec<String>), &'a String>,
    binary_modules: &'a BTreeSet<String>,
}

impl<'a> Resolver<'a> {
    /// The file a path written in `file` reaches, and the name it takes
    /// there (none when the path names the module itself).
    fn resolve(&self, file: &str, path: &[String]) -> Option<(&'a String, Option<String>)> {
        let (binary, own) = module_of(file, self.binary_modules);
        let mut resolved: Vec<String> = Vec::new();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => rest = &rest[1..],
            Some("self") => {
                resolved = own.clone();
                rest = &rest[1..];
            }
            Some("super") => {
                // `super` of a file is its module's parent.
                resolved = own.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    resolved.pop();
                    rest = &rest[1..];
                }
            }
            _ => return None,
        }
        // The longest module path the path names, and the name after.
        let mut target = None;
        let mut full = resolved.clone();
        for (n, segment) in rest.iter().enumerate() {
            full.push(segment.clone());
            if let Some(found) = self.modules.get(&(binary, full.clone())) {
                target = Some((*found, rest.get(n + 1).cloned()));
            }
        }
        target.or_else(|| {
            self.modules
                .get(&(binary, resolved))
                .map(|found| (*found, rest.first().cloned()))
        })
    }
}

/// The paths of a file's `pub use` (and `pub(crate) use`) items, each
/// starting at `crate`, `super` or `self` (a path from a child module,
/// `pub use format::Report`, is read as `self::format::Report`).
fn reexported_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for item in code.split(';') {
        let item = item.trim();
        let Some(path) = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|p| item.rsplit_once(p).map(|(_, path)| path.trim()))
        else {
            continue;
        };
        let path = if ["crate::", "super::", "self::"]
            .iter()
            .any(|p| path.starts_with(p))
        {
            path.to_string()
        } else {
            format!("self::{path}")
        };
        let chars: Vec<char> = path.chars().collect();
        out.extend(path_at(&chars, 0, Vec::new()).0);
    }
    out
}

/// The strongly connected components of a graph given as successor lists.
fn tarjan(next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        counter: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.counter);
        s.low[v] = s.counter;
        s.counter += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.next[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let n = next.len();
    let mut state = State {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        counter: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if state.index[v].is_none() {
            visit(&mut state, v);
        }
    }
    state.out
}
