//! Data flows one way through the library: each module may use only the
//! modules of lower layers (and its own). This reads every source file and
//! fails on an import that reaches up, naming the file and line.

use std::path::Path;

/// The layers, lowest first. `model` is the shared vocabulary; `sandbox`,
/// `fault`, `observe` and `record` talk to the kernel or hold events and know
/// nothing of suites; `suite` is the declarative model (it may ask the
/// sandbox which sysctls are allowed); `peer` performs a suite's socket
/// calls, `sut` runs its program under test and `verdict` judges its
/// expectations; `report` renders; `runner`
/// drives all of them.
const LAYERS: &[&[&str]] = &[
    &["model"],
    &["sandbox", "fault", "observe", "record"],
    &["suite"],
    &["peer", "sut", "verdict"],
    &["report"],
    &["runner"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut reaching_up = Vec::new();
    let mut placed = 0;
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = layer(&module) else {
            // lib.rs, main.rs and the binary's modules (cli, bench) sit on top.
            continue;
        };
        placed += 1;
        let text = std::fs::read_to_string(&file).expect("read source");
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
                            "{}:{}: `{module}` uses `{used}`, a layer above it",
                            relative.display(),
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
