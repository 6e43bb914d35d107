//! No import circles between modules (CONVENTIONS.md, "Code"): in every crate of the workspace,
//! the graph of which module uses which (`crate::` and `super::` paths outside tests and
//! comments) has no cycle. A module may use its own submodules and its parents' items.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name (`a::b`, the crate root is "") -> its source file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let name = match parts.as_slice() {
                [one] if one == "lib" || one == "main" => String::new(),
                _ => parts.join("::"),
            };
            out.insert(name, p);
        }
    }
    out
}

/// The code of a file without its test module and its comment lines.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifier paths following `prefix` in `code`: `crate::a::b::c` gives ["a", "b", "c"]; a brace
/// group `crate::{a, b::c}` gives one path per item.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| !p.is_empty())
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            out.extend(inner.split(',').map(ident).filter(|p| !p.is_empty()));
        } else {
            let rest: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let p = ident(&rest);
            if !p.is_empty() {
                out.push(p);
            }
        }
    }
    out
}

/// The longest module named by a prefix of `path`.
fn module_of(path: &[String], names: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].join("::"))
        .find(|n| names.contains_key(n))
}

fn related(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// Which module uses which, edges to and from relatives (parents, submodules) left out.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let names = modules(src);
    let mut g = BTreeMap::new();
    for (name, file) in &names {
        let text = code(&std::fs::read_to_string(file).expect("read a module"));
        let mut uses = BTreeSet::new();
        for p in paths_after(&text, "crate::") {
            uses.extend(module_of(&p, &names));
        }
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        for p in paths_after(&text, "super::") {
            let mut full: Vec<String> = parent
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            full.extend(p);
            uses.extend(module_of(&full, &names));
        }
        uses.retain(|u| !related(name, u));
        g.insert(name.clone(), uses);
    }
    g
}

/// Each cycle as the modules on it (strongly connected components of more than one module).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = g.get(from).into_iter().flatten().cloned().collect();
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(g.get(&n).into_iter().flatten().cloned());
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = g.keys().map(|k| (k, reach(k))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for a in g.keys() {
        let comp: Vec<String> = g
            .keys()
            .filter(|b| *b == a || (reaches[a].contains(*b) && reaches[*b].contains(a)))
            .cloned()
            .collect();
        if comp.len() > 1 && !out.contains(&comp) {
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut found = Vec::new();
    let mut crates = 0;
    for e in std::fs::read_dir(root)
        .expect("read the workspace")
        .flatten()
    {
        let src = e.path().join("src");
        if !e.path().join("Cargo.toml").is_file() || !src.is_dir() {
            continue;
        }
        crates += 1;
        for c in cycles(&graph(&src)) {
            found.push(format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                c.join(" <-> ")
            ));
        }
    }
    assert!(
        crates >= 10,
        "only {crates} crates found under {}",
        root.display()
    );
    assert!(found.is_empty(), "import circles: {found:#?}");
}

#[test]
fn the_check_finds_a_circle_and_ignores_relatives_and_tests() {
    let dir = std::env::temp_dir().join(format!("xtask-modules-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    let w = |p: &str, t: &str| std::fs::write(src.join(p), t).unwrap();
    w("lib.rs", "mod a; mod b; use crate::a::X;\n");
    w("a.rs", "use crate::{b::Y, c};\npub struct X;\n");
    w(
        "b/mod.rs",
        "mod inner;\n// crate::a::X in a comment\npub fn y() { super::a::X; }\n",
    );
    w("b/inner.rs", "use super::Y;\n");
    w("c.rs", "#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n");
    let g = graph(&src);
    assert_eq!(g["a"], ["b".to_string(), "c".to_string()].into());
    assert_eq!(g["b"], ["a".to_string()].into());
    assert!(g["b::inner"].is_empty(), "its parent: {:?}", g["b::inner"]);
    assert!(g["c"].is_empty(), "a test's use: {:?}", g["c"]);
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    std::fs::remove_dir_all(&dir).unwrap();
}
