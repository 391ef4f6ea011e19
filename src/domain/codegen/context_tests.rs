//! Outlines of real TSX/TS files (fixtures), import resolution, selection and ranking.

use super::*;

const TODO_LIST: &str = include_str!("fixtures/TodoList.tsx");
const STORE: &str = include_str!("fixtures/store.ts");

#[test]
fn a_component_outline_has_props_signatures_and_exports_but_no_bodies() {
    let o = outline("src/components/TodoList.tsx", TODO_LIST);
    assert_eq!(
        o,
        "export interface TodoListProps {\n  todos: Todo[]\n  filter: Filter\n  onToggle: (id: string) => void\n  onRemove: (id: string) => void\n}\n\
         function visible(todos: Todo[], filter: Filter): Todo[]\n\
         export function TodoList({ todos, filter, onToggle, onRemove, }: TodoListProps)\n\
         export default TodoList"
    );
    assert!(!o.contains("useMemo"), "no bodies, no imports");
    assert!(!o.contains("EMPTY_MESSAGE"), "module internals left out");
    assert!(o.len() * 3 < TODO_LIST.len(), "an outline is compact");
}

#[test]
fn a_module_outline_keeps_types_whole_and_values_as_heads() {
    let o = outline("src/store.ts", STORE);
    let expected = [
        "export type Action =\n  | { type: 'add'; title: string }\n  | { type: 'toggle'; id: string }\n  | { type: 'remove'; id: string }",
        "export const STORAGE_KEY = 'todos.v1'",
        "export const initialState: { todos: Todo[] } = {",
        "export function reducer(state: { todos: Todo[] }, action: Action): { todos: Todo[] }",
        "export const load = async (key: string = STORAGE_KEY): Promise<Todo[]> =>",
        "export class TodoStore",
        "export { formatCount } from './lib/format'",
        "export * from './types'",
    ];
    assert_eq!(o, expected.join("\n"));
}

#[test]
fn outlines_are_deterministic_and_cover_config_files() {
    assert_eq!(
        outline("src/store.ts", STORE),
        outline("src/store.ts", STORE)
    );
    let pkg = "{\"name\":\"a\",\"scripts\":{\"dev\":\"vite\",\"build\":\"vite build\"},\"dependencies\":{\"react\":\"^19.2.0\"},\"devDependencies\":{\"vite\":\"^7.3.0\"}}";
    assert_eq!(
        outline("package.json", pkg),
        "scripts: build, dev\ndependencies: react@^19.2.0\ndevDependencies: vite@^7.3.0"
    );
    assert_eq!(
        outline("index.html", "<!doctype html>\n<html>\n</html>\n"),
        "(3 lines) <!doctype html>"
    );
}

fn ws(files: &[(&str, &str)]) -> Workspace {
    Workspace::new(
        &[],
        files
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect(),
    )
}

#[test]
fn imports_resolve_relative_paths_extensions_and_indexes() {
    let w = ws(&[
        ("src/components/TodoList.tsx", TODO_LIST),
        (
            "src/components/TodoItem.tsx",
            "export function TodoItem() {}\n",
        ),
        ("src/types/index.ts", "export type Todo = {}\n"),
        ("src/lib/format.ts", "export const formatCount = 1\n"),
        ("src/components/TodoList.css", "ul {}\n"),
        ("src/unrelated.ts", "export {}\n"),
    ]);
    let got = imports("src/components/TodoList.tsx", TODO_LIST, &w.files);
    assert_eq!(
        got,
        vec![
            "src/types/index.ts",
            "src/components/TodoItem.tsx",
            "src/lib/format.ts",
            "src/components/TodoList.css"
        ]
    );
    assert_eq!(
        w.with_imports(&["src/components/TodoList.tsx".into()])
            .len(),
        5
    );
    assert_eq!(
        w.importers("src/lib/format.ts"),
        vec!["src/components/TodoList.tsx"]
    );
    assert_eq!(
        specifiers("const m = await import('./lazy')\nconst x = require(\"y\")\n"),
        vec!["./lazy", "y"]
    );
}

#[test]
fn only_a_change_of_dependencies_needs_an_install() {
    let a = r#"{"name":"x","scripts":{"dev":"vite"},"dependencies":{"react":"^19","zod":"^3"}}"#;
    let reformatted = "{\n  \"dependencies\": { \"zod\": \"^3\", \"react\": \"^19\" },\n  \"name\": \"y\",\n  \"scripts\": {\"dev\": \"vite --host\"}\n}\n";
    assert_eq!(dependencies(a), dependencies(reformatted));
    let added = r#"{"dependencies":{"react":"^19","zod":"^3"},"devDependencies":{"vitest":"^3"}}"#;
    assert_ne!(dependencies(a), dependencies(added));
    assert_eq!(dependencies("{ not json"), None);
    // A script npm runs while installing counts.
    let hook = r#"{"name":"x","scripts":{"dev":"vite","preinstall":"exit 1"},"dependencies":{"react":"^19","zod":"^3"}}"#;
    assert_ne!(dependencies(a), dependencies(hook));
}

#[test]
fn the_template_sits_under_the_apps_files() {
    let w = Workspace::new(
        &[("src/App.tsx", "template app"), ("src/main.tsx", "entry")],
        [("src/App.tsx".to_string(), "the app's".to_string())].into(),
    );
    assert_eq!(w.get("src/App.tsx"), Some("the app's"));
    assert_eq!(w.get("src/main.tsx"), Some("entry"));
    assert!(w.template.contains("src/main.tsx") && !w.template.contains("src/App.tsx"));
}

#[test]
fn selection_fills_the_budgets_in_order() {
    let big = "x".repeat(600);
    let w = ws(&[
        ("a.ts", &big),
        ("b.ts", &big),
        ("c.ts", "export const c = 1\n"),
        ("d.ts", "export const d = 1\n"),
    ]);
    let s = select(&w, &["b.ts".into(), "a.ts".into()], 1000, 10_000);
    assert_eq!(s.full, vec!["b.ts"]);
    assert_eq!(s.outlined, vec!["a.ts", "c.ts", "d.ts"]);
    let s = select(&w, &[], 1000, 20);
    assert!(s.full.is_empty());
    assert_eq!(s.outlined.len() + s.listed.len(), 4);
    assert!(!s.listed.is_empty());
}

#[test]
fn an_edit_request_is_matched_to_the_files_it_names() {
    let mut files: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("src/components/Widget{i}.tsx"),
                format!("export function Widget{i}() {{ return null }}\n"),
            )
        })
        .collect();
    files.push(("src/components/TodoList.tsx".into(), TODO_LIST.to_string()));
    let w = Workspace::new(&[], files.into_iter().collect());
    let r = rank_for_request(
        &w,
        "Rename the empty message of the todo list to 'All clear'",
    );
    assert_eq!(
        r.first().map(String::as_str),
        Some("src/components/TodoList.tsx")
    );
    let r = rank_for_request(&w, "In Widget7, show a border");
    assert_eq!(
        r.first().map(String::as_str),
        Some("src/components/Widget7.tsx")
    );
    assert!(r.len() <= EDIT_MATCHES);
}
