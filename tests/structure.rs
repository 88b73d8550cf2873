//! The shape of the source tree, checked on every test run:
//!
//! - no import cycle between files, in any crate: a file that refers to an
//!   item defined in another file (through `use`, or a path in the code)
//!   depends on it; a re-export (`pub use`) is followed to the file that
//!   defines the item, and a file that re-exports an item depends on that
//!   item's file. No file may depend, directly or through others, on itself;
//! - no function over 80 lines (from its `fn` to its closing brace) outside
//!   tests.
//!
//! Test code (`#[cfg(test)]` modules, `#[test]` functions, the `tests/`
//! folders) is left out of both.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// The longest a function may be, in lines.
const MAX_FN_LINES: usize = 80;

/// Each crate's root file, relative to the workspace root.
const CRATE_ROOTS: &[&str] = &[
    "policy/src/lib.rs",
    "catalog/src/lib.rs",
    "connector/src/lib.rs",
    "src/main.rs",
];

/// Folders of stand-alone programs whose functions are bounded too.
const PROGRAM_DIRS: &[&str] = &[
    "examples",
    "benches",
    "connector/benches",
    "catalog/benches",
];

/// The workspace root: this crate's folder, or `STRUCTURE_ROOT` when set
/// (to check another checkout with a build of this test).
fn root() -> PathBuf {
    std::env::var_os("STRUCTURE_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

// ---------------------------------------------------------------- modules

/// One source file of a crate, parsed.
struct SourceFile {
    /// The file, relative to the workspace root.
    path: String,
    /// The module path of the file (`crate::audit::log`), as segments.
    module: Vec<String>,
    syntax: syn::File,
}

/// Every module path of a crate (inline modules included) and the file
/// that holds it.
#[derive(Default)]
struct Crate {
    /// The folder file names are relative to.
    base: PathBuf,
    files: Vec<SourceFile>,
    /// Module path -> index into `files`.
    modules: HashMap<Vec<String>, usize>,
    /// Per module path: names it declares (items) and what it imports or
    /// re-exports under a name (alias -> absolute path).
    scopes: HashMap<Vec<String>, Scope>,
}

#[derive(Default, Clone)]
struct Scope {
    /// Items defined in this module (not modules).
    items: BTreeSet<String>,
    /// Child modules declared here.
    children: BTreeSet<String>,
    /// `use` names: alias -> absolute path.
    uses: BTreeMap<String, Vec<String>>,
    /// `use path::*`: absolute module paths.
    globs: Vec<Vec<String>>,
}

fn is_test_attr(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("test") {
            return true;
        }
        if path.is_ident("cfg") {
            let text = attr
                .meta
                .require_list()
                .map(|l| l.tokens.to_string())
                .unwrap_or_default();
            let words: Vec<&str> = text
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .collect();
            return words.contains(&"test") && !words.contains(&"not");
        }
        // `#[tokio::test]` and the like.
        path.segments.last().is_some_and(|s| s.ident == "test")
    })
}

/// The crate whose root file is `root_file`, file names relative to `base`.
fn load_crate(base: &Path, root_file: &str) -> Crate {
    let mut krate = Crate {
        base: base.to_path_buf(),
        ..Crate::default()
    };
    let path = base.join(root_file);
    load_module(&mut krate, &path, vec!["crate".to_owned()], true);
    krate
}

/// Loads the file `path` as module `module`, and its children.
fn load_module(krate: &mut Crate, path: &Path, module: Vec<String>, owns_dir: bool) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = if owns_dir {
        path.parent().unwrap().to_path_buf()
    } else {
        path.with_extension("")
    };
    let index = krate.files.len();
    let relative = path
        .strip_prefix(&krate.base)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    krate.files.push(SourceFile {
        path: relative,
        module: module.clone(),
        syntax: syntax.clone(),
    });
    scan_items(krate, &syntax.items, &module, index, &dir);
}

/// Records the items and uses of a module's `items`, loading the files of
/// its child modules from `dir`.
fn scan_items(krate: &mut Crate, items: &[syn::Item], module: &[String], file: usize, dir: &Path) {
    krate.modules.insert(module.to_vec(), file);
    let mut scope = Scope::default();
    let items: Vec<&syn::Item> = items
        .iter()
        .filter(|item| !item_attrs(item).is_some_and(is_test_attr))
        .collect();
    // Child modules first: a `use` may name one before its `mod`.
    for item in &items {
        if let syn::Item::Mod(m) = item {
            scope.children.insert(m.ident.to_string());
        }
    }
    for item in items {
        match item {
            syn::Item::Mod(m) => {
                let name = m.ident.to_string();
                let mut child = module.to_vec();
                child.push(name.clone());
                match &m.content {
                    Some((_, inner)) => scan_items(krate, inner, &child, file, &dir.join(&name)),
                    None => {
                        let flat = dir.join(format!("{name}.rs"));
                        if flat.exists() {
                            load_module(krate, &flat, child, false);
                        } else {
                            load_module(krate, &dir.join(&name).join("mod.rs"), child, true);
                        }
                    }
                }
            }
            syn::Item::Use(u) => collect_use(&u.tree, module, &mut Vec::new(), &mut scope),
            other => {
                if let Some(name) = item_name(other) {
                    scope.items.insert(name);
                }
            }
        }
    }
    krate.scopes.insert(module.to_vec(), scope);
}

fn item_attrs(item: &syn::Item) -> Option<&[syn::Attribute]> {
    Some(match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return None,
    })
}

fn item_name(item: &syn::Item) -> Option<String> {
    Some(match item {
        syn::Item::Const(i) => i.ident.to_string(),
        syn::Item::Enum(i) => i.ident.to_string(),
        syn::Item::Fn(i) => i.sig.ident.to_string(),
        syn::Item::Static(i) => i.ident.to_string(),
        syn::Item::Struct(i) => i.ident.to_string(),
        syn::Item::Trait(i) => i.ident.to_string(),
        syn::Item::Type(i) => i.ident.to_string(),
        syn::Item::Union(i) => i.ident.to_string(),
        syn::Item::Macro(i) => i.ident.as_ref()?.to_string(),
        _ => return None,
    })
}

/// Adds the names a `use` tree brings in to `scope`, as absolute paths.
fn collect_use(
    tree: &syn::UseTree,
    module: &[String],
    prefix: &mut Vec<String>,
    scope: &mut Scope,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            collect_use(&p.tree, module, prefix, scope);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut full = prefix.clone();
            full.push(n.ident.to_string());
            let alias = if n.ident == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                n.ident.to_string()
            };
            if n.ident == "self" {
                full.pop();
            }
            scope.uses.insert(alias, absolute(&full, module, scope));
        }
        syn::UseTree::Rename(r) => {
            let mut full = prefix.clone();
            full.push(r.ident.to_string());
            if r.ident == "self" {
                full.pop();
            }
            scope
                .uses
                .insert(r.rename.to_string(), absolute(&full, module, scope));
        }
        syn::UseTree::Glob(_) => scope.globs.push(absolute(prefix, module, scope)),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                collect_use(tree, module, prefix, scope);
            }
        }
    }
}

/// `path` as seen from `module`, made absolute (`crate::...`); paths into
/// other crates are returned as they are.
fn absolute(path: &[String], module: &[String], scope: &Scope) -> Vec<String> {
    let Some(first) = path.first() else {
        return Vec::new();
    };
    let mut out: Vec<String>;
    let mut rest = &path[1..];
    match first.as_str() {
        "crate" => out = vec!["crate".to_owned()],
        "self" => out = module.to_vec(),
        "super" => {
            out = module.to_vec();
            out.pop();
            while rest.first().is_some_and(|s| s == "super") {
                out.pop();
                rest = &rest[1..];
            }
        }
        name if scope.children.contains(name) => {
            out = module.to_vec();
            out.push(name.to_owned());
        }
        _ => return path.to_vec(),
    }
    out.extend(rest.iter().cloned());
    out
}

impl Crate {
    /// The file that defines what `path` (absolute) names, following
    /// re-exports; `None` for paths outside the crate.
    fn defining_file(&self, path: &[String], depth: usize) -> Option<usize> {
        if path.first().map(String::as_str) != Some("crate") || depth > 16 {
            return None;
        }
        // The longest prefix that is a module.
        let mut split = path.len();
        while split > 0 && !self.modules.contains_key(&path[..split]) {
            split -= 1;
        }
        let module = &path[..split];
        let file = *self.modules.get(module)?;
        let Some(name) = path.get(split) else {
            // The path names a module itself.
            return Some(file);
        };
        let scope = self.scopes.get(module)?;
        if scope.items.contains(name) {
            return Some(file);
        }
        if let Some(target) = scope.uses.get(name) {
            let mut next = target.clone();
            next.extend(path[split + 1..].iter().cloned());
            return self.defining_file(&next, depth + 1).or(Some(file));
        }
        for glob in &scope.globs {
            let mut next = glob.clone();
            next.extend(path[split..].iter().cloned());
            if let Some(found) = self.defining_file(&next, depth + 1) {
                if found != file {
                    return Some(found);
                }
            }
        }
        // An item the scan does not know (a macro-made one, an impl's
        // associated item): the module's own file.
        Some(file)
    }
}

// ---------------------------------------------------------------- references

/// Collects the paths a file refers to, skipping test code.
struct References<'a> {
    krate: &'a Crate,
    /// The module the visitor is in.
    module: Vec<String>,
    out: BTreeSet<usize>,
    /// The first path that made each dependency, for the message.
    why: BTreeMap<usize, String>,
}

impl References<'_> {
    fn refer(&mut self, segments: Vec<String>) {
        let Some(scope) = self.krate.scopes.get(&self.module) else {
            return;
        };
        let Some(first) = segments.first() else {
            return;
        };
        let absolute = if let Some(target) = scope.uses.get(first) {
            let mut path = target.clone();
            path.extend(segments[1..].iter().cloned());
            path
        } else {
            absolute(&segments, &self.module, scope)
        };
        if let Some(file) = self.krate.defining_file(&absolute, 0) {
            self.note(file, &segments);
        }
    }

    fn note(&mut self, file: usize, path: &[String]) {
        self.out.insert(file);
        self.why.entry(file).or_insert_with(|| path.join("::"));
    }
}

impl<'ast> Visit<'ast> for References<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_test_attr(&m.attrs) {
            return;
        }
        if let Some((_, items)) = &m.content {
            self.module.push(m.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.module.pop();
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_test_attr(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !is_test_attr(&i.attrs) {
            syn::visit::visit_item_impl(self, i);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_test_attr(&u.attrs) {
            return;
        }
        let scope = self.krate.scopes.get(&self.module).cloned();
        for target in scope.iter().flat_map(|s| s.uses.values().chain(&s.globs)) {
            if let Some(file) = self.krate.defining_file(target, 0) {
                self.note(file, target);
            }
        }
    }

    /// `pub(crate)` and `pub(super)` name no item.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 || path.leading_colon.is_none() {
            self.refer(segments);
        }
        syn::visit::visit_path(self, path);
    }
}

/// The files each file of `krate` depends on.
fn dependencies(krate: &Crate) -> Vec<BTreeSet<usize>> {
    dependencies_with_reasons(krate).0
}

/// The files each file of `krate` depends on, and per dependency the
/// first path that made it.
fn dependencies_with_reasons(
    krate: &Crate,
) -> (Vec<BTreeSet<usize>>, Vec<BTreeMap<usize, String>>) {
    krate
        .files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let mut visitor = References {
                krate,
                module: file.module.clone(),
                out: BTreeSet::new(),
                why: BTreeMap::new(),
            };
            for item in &file.syntax.items {
                // Inline modules are visited with their own module path;
                // child files are their own entries.
                if let syn::Item::Mod(m) = item {
                    if m.content.is_none() {
                        continue;
                    }
                }
                visitor.visit_item(item);
            }
            visitor.out.remove(&index);
            (visitor.out, visitor.why)
        })
        .unzip()
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.edges[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let n = edges.len();
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
}

/// Each cycle, as the files in it and, for each, what it uses of the
/// others.
fn describe(
    krate: &Crate,
    edges: &[BTreeSet<usize>],
    why: &[BTreeMap<usize, String>],
    component: &[usize],
) -> String {
    let mut out = String::new();
    for &file in component {
        let uses: Vec<String> = edges[file]
            .iter()
            .filter(|d| component.contains(d))
            .map(|d| format!("{} (`{}`)", krate.files[*d].path, why[file][d]))
            .collect();
        out.push_str(&format!(
            "\n    {} -> {}",
            krate.files[file].path,
            uses.join(", ")
        ));
    }
    out
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut found = Vec::new();
    for root_file in CRATE_ROOTS {
        let krate = load_crate(&root(), root_file);
        assert!(krate.files.len() > 1, "{root_file}: no modules found");
        let (edges, why) = dependencies_with_reasons(&krate);
        for component in cycles(&edges) {
            found.push(describe(&krate, &edges, &why, &component));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between files (each line: a file -> the files of the cycle it uses, and the first path that uses each):{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_check_finds_a_cycle_through_a_re_export() {
    // A mod.rs that re-exports a child, which uses an item of the mod.rs
    // through another file.
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("lib.rs", "mod a;\nmod b;\nmod c;\npub use a::A;\n");
    write("a.rs", "pub struct A;\npub fn f() { crate::b::g(); }\n");
    write("b.rs", "use crate::A;\npub fn g() { let _ = A; }\n");
    write("c.rs", "pub fn h() { super::b::g(); }\n");
    let krate = load_crate(dir.path(), "lib.rs");
    let edges = dependencies(&krate);
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{edges:?}");
    let mut files: Vec<&str> = found[0]
        .iter()
        .map(|f| krate.files[*f].path.as_str())
        .collect();
    files.sort_unstable();
    assert_eq!(files, ["a.rs", "b.rs"]);
}

// ---------------------------------------------------------------- functions

/// Functions longer than [`MAX_FN_LINES`], outside test code.
struct LongFunctions<'a> {
    file: &'a str,
    out: Vec<String>,
}

impl LongFunctions<'_> {
    fn check(&mut self, name: &syn::Ident, start: proc_macro2::Span, block: &syn::Block) {
        let first = start.start().line;
        let last = block.brace_token.span.close().end().line;
        let lines = last + 1 - first;
        if lines > MAX_FN_LINES {
            self.out
                .push(format!("{}:{first} `{name}`: {lines} lines", self.file));
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_attr(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !is_test_attr(&i.attrs) {
            syn::visit::visit_item_impl(self, i);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_test_attr(&f.attrs) {
            return;
        }
        self.check(&f.sig.ident, f.sig.span(), &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if is_test_attr(&f.attrs) {
            return;
        }
        self.check(&f.sig.ident, f.sig.span(), &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(block) = &f.default {
            self.check(&f.sig.ident, f.sig.span(), block);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_function_outside_tests_is_over_80_lines() {
    let mut files = Vec::new();
    for crate_root in CRATE_ROOTS {
        let src = root().join(crate_root);
        rust_files(src.parent().unwrap(), &mut files);
    }
    for dir in PROGRAM_DIRS {
        rust_files(&root().join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 50, "only {} source files found", files.len());
    let mut long = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let relative = path.strip_prefix(root()).unwrap().to_string_lossy();
        let mut visitor = LongFunctions {
            file: &relative,
            out: Vec::new(),
        };
        visitor.visit_file(&syntax);
        long.extend(visitor.out);
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them into named steps):\n  {}",
        long.join("\n  ")
    );
}

#[test]
fn the_length_check_counts_from_fn_to_the_closing_brace() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES - 1);
    let text = format!(
        "fn long() {{\n{body}}}\nfn short() {{}}\n#[cfg(test)]\nmod tests {{ fn t() {{\n{body}{body}}} }}\n"
    );
    let syntax = syn::parse_file(&text).unwrap();
    let mut visitor = LongFunctions {
        file: "x.rs",
        out: Vec::new(),
    };
    visitor.visit_file(&syntax);
    assert_eq!(
        visitor.out,
        vec![format!("x.rs:1 `long`: {} lines", MAX_FN_LINES + 1)]
    );
}
