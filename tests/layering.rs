//! The layering rule of ARCHITECTURE.md, checked: every `crate::…` path in
//! `src/` names a module on the same or a lower layer than the file's own
//! top-level module, same-layer imports form no cycle, and every module is
//! in the table. The table is read from ARCHITECTURE.md itself, so the
//! document and the check cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `layer → modules`, from the table between the `layers` markers.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let table = text
        .split("<!-- layers -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /layers -->").next())
        .expect("ARCHITECTURE.md has a <!-- layers --> table");
    let mut layers = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Ok(layer) = cells[1].parse::<usize>() else {
            continue;
        };
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            assert!(
                layers.insert(module.to_string(), layer).is_none(),
                "{module} listed twice"
            );
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate roots).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main" | "cli")).then(|| name.to_string())
}

/// The top-level modules a file's code (not its comments) names through
/// `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// Module → the modules it imports, across its files.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

#[test]
fn no_module_imports_one_above_it() {
    let layers = layers();
    let graph = graph();
    let mut violations = Vec::new();
    for (module, imports) in &graph {
        let Some(&layer) = layers.get(module) else {
            violations.push(format!("{module}: not in the ARCHITECTURE.md layer table"));
            continue;
        };
        for imported in imports {
            match layers.get(imported) {
                None => violations.push(format!("{module} imports {imported}, which is not in the table")),
                Some(&other) if other > layer => {
                    violations.push(format!("{module} (layer {layer}) imports {imported} (layer {other})"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = graph();
    // Depth-first search with colours: grey on the stack, black done.
    fn visit<'g>(
        module: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'g str, u8>,
        stack: &mut Vec<&'g str>,
    ) -> Option<Vec<String>> {
        match colour.get(module) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|m| *m == module).unwrap();
                let mut cycle: Vec<String> = stack[start..].iter().map(|m| m.to_string()).collect();
                cycle.push(module.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        colour.insert(module, 1);
        stack.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, colour, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        colour.insert(module, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut colour, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_check_sees_imports_in_code_not_in_comments() {
    let text = "use crate::money::Micros;\n/// See [`crate::server`].\nlet x = crate::clock::now(); // crate::admin\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["clock", "money"]);
}
