//! The incremental push of an app's files to a branch, through GitHub's git data API (no git
//! binary, no clone): remote head → its tree → compare with the app's files by git blob sha
//! (computed here) → upload only the changed blobs → one tree on top of the remote one (removed
//! files as `sha: null` entries) → one commit whose parent is the remote head → move the branch
//! without force.
//!
//! Invariants:
//! - the repository mirrors the app: after a push the branch's files are exactly the app's files
//!   (what the app does not have is deleted, what it has is written);
//! - nothing on GitHub is ever overwritten: when the branch is not where our last push left it
//!   (someone pushed meanwhile) the push stops before writing anything with
//!   [`GitHubErrorKind::RemoteMoved`], and a branch that moves during the push is refused by
//!   GitHub (the ref update is not forced) with the same error;
//! - an unchanged app makes no commit.

use super::client::{GitHub, GitHubError, GitHubErrorKind, GitHubHttp, TreeChange, TreeEntry};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};

/// An app's files as its repository holds them: the template files it started from (`base`:
/// the template's sources and other text files), each replaced by the app's saved file of the
/// same path, plus every other saved file. The repository is then a project that installs and
/// runs on its own, not only the files the model wrote.
pub fn with_template<'a>(
    base: impl IntoIterator<Item = &'a (&'static str, &'static str)>,
    saved: BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = base
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect();
    out.extend(saved);
    out
}

/// Git's object id of a blob: SHA-1 of `blob <len>\0<content>`, in hex.
pub fn git_blob_sha(content: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a push must change: the paths to write and the paths to delete, in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub write: Vec<String>,
    pub delete: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.delete.is_empty()
    }
}

/// Compares the remote tree's files with the app's: a file whose blob sha differs (or that the
/// remote lacks) is written; a remote file the app lacks is deleted. Submodules and directories
/// are not files.
pub fn plan(remote: &[TreeEntry], local: &BTreeMap<String, Vec<u8>>) -> Plan {
    plan_within(remote, local, None)
}

/// [`plan`] limited to the paths in `only` (when given): a change that touched those files
/// commits them and nothing else (what the branch holds outside them stays as it is).
pub fn plan_within(
    remote: &[TreeEntry],
    local: &BTreeMap<String, Vec<u8>>,
    only: Option<&BTreeSet<String>>,
) -> Plan {
    let mut p = plan_all(remote, local);
    if let Some(only) = only {
        p.write.retain(|x| only.contains(x));
        p.delete.retain(|x| only.contains(x));
    }
    p
}

fn plan_all(remote: &[TreeEntry], local: &BTreeMap<String, Vec<u8>>) -> Plan {
    let remote_files: BTreeMap<&str, &str> = remote
        .iter()
        .filter(|e| e.kind == "blob")
        .map(|e| (e.path.as_str(), e.sha.as_str()))
        .collect();
    let write = local
        .iter()
        .filter(|(path, content)| {
            remote_files.get(path.as_str()) != Some(&git_blob_sha(content).as_str())
        })
        .map(|(p, _)| p.clone())
        .collect();
    let local_paths: BTreeSet<&str> = local.keys().map(String::as_str).collect();
    let delete = remote_files
        .keys()
        .filter(|p| !local_paths.contains(*p))
        .map(|p| p.to_string())
        .collect();
    Plan { write, delete }
}

/// Where and what to push.
pub struct PushRequest<'a> {
    pub owner: &'a str,
    pub repo: &'a str,
    pub branch: &'a str,
    /// The commit our last push left the branch at; `None` for the first push (then the branch
    /// may be anywhere: the repository was just created with one initial commit).
    pub expected_head: Option<&'a str>,
    pub files: &'a BTreeMap<String, Vec<u8>>,
    /// Only these paths are written or deleted (a ticket's change); `None`: the branch mirrors
    /// `files` exactly.
    pub only: Option<&'a BTreeSet<String>>,
    pub message: &'a str,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The branch's commit now (the remote head when nothing changed).
    pub head: String,
    /// Whether a commit was made.
    pub committed: bool,
    pub plan: Plan,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Pushes `req.files` as one commit on top of the branch (see the module header).
pub async fn push<H: GitHubHttp>(
    gh: &GitHub<'_, H>,
    req: &PushRequest<'_>,
) -> Result<Pushed, GitHubError> {
    let (o, r) = (req.owner, req.repo);
    let head = gh.branch_head(o, r, req.branch).await?.ok_or_else(|| {
        GitHubError::new(
            GitHubErrorKind::NotFound,
            format!("the branch `{}` does not exist in {o}/{r}", req.branch),
        )
    })?;
    if let Some(expected) = req.expected_head {
        if expected != head {
            return Err(GitHubError::new(
                GitHubErrorKind::RemoteMoved,
                format!(
                    "`{}` in {o}/{r} moved on since our last push (it is at {}, we left it at {}): someone pushed to it. Nothing was pushed or overwritten; bring those commits into the app, or push to another repository",
                    req.branch,
                    short(&head),
                    short(expected)
                ),
            ));
        }
    }
    let base_tree = gh.commit_tree(o, r, &head).await?;
    let remote = gh.tree(o, r, &base_tree).await?;
    let plan = plan_within(&remote, req.files, req.only);
    if plan.is_empty() {
        return Ok(Pushed {
            head,
            committed: false,
            plan,
        });
    }
    let mut changes = Vec::with_capacity(plan.write.len() + plan.delete.len());
    for path in &plan.write {
        let content = &req.files[path];
        let sha = gh.create_blob(o, r, content).await?;
        if sha != git_blob_sha(content) {
            return Err(GitHubError::new(
                GitHubErrorKind::Unavailable,
                format!("GitHub stored `{path}` under an unexpected id"),
            ));
        }
        changes.push(TreeChange::Put {
            path: path.clone(),
            sha,
        });
    }
    changes.extend(
        plan.delete
            .iter()
            .map(|p| TreeChange::Delete { path: p.clone() }),
    );
    let tree = gh.create_tree(o, r, &base_tree, &changes).await?;
    let commit = gh.create_commit(o, r, req.message, &tree, &[&head]).await?;
    gh.move_branch(o, r, req.branch, &commit).await.map_err(|e| {
        if e.kind == GitHubErrorKind::RemoteMoved {
            GitHubError::new(
                GitHubErrorKind::RemoteMoved,
                format!(
                    "`{}` in {o}/{r} moved on while we pushed: someone pushed to it. Nothing was overwritten; push again once those commits are in the app",
                    req.branch
                ),
            )
        } else {
            e
        }
    })?;
    Ok(Pushed {
        head: commit,
        committed: true,
        plan,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_repository_holds_the_template_under_the_apps_files() {
        let base = [
            ("package.json", "{\"name\": \"template\"}"),
            ("index.html", "<div id=root></div>"),
            (".gitignore", "node_modules\n"),
        ];
        let saved = BTreeMap::from([
            ("package.json".to_string(), b"{\"name\": \"app\"}".to_vec()),
            ("src/App.tsx".to_string(), b"export default 1;".to_vec()),
        ]);
        let files = with_template(base.iter(), saved);
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [".gitignore", "index.html", "package.json", "src/App.tsx"]
        );
        assert_eq!(files["package.json"], b"{\"name\": \"app\"}");
        assert_eq!(files["index.html"], b"<div id=root></div>");
    }

    use super::super::client::{HttpMethod, HttpRequest, HttpResponse};
    use super::*;
    use serde_json::{json, Value};
    use std::cell::RefCell;

    #[test]
    fn blob_shas_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`, and the empty blob.
        assert_eq!(
            git_blob_sha(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            git_blob_sha(b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    fn entry(path: &str, content: &str) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            mode: "100644".into(),
            kind: "blob".into(),
            sha: git_blob_sha(content.as_bytes()),
            size: Some(content.len() as u64),
        }
    }

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_plan_writes_changes_and_deletes_what_is_gone() {
        let remote = vec![
            entry("README.md", "# x\n"),
            entry("src/a.ts", "a\n"),
            entry("src/b.ts", "b\n"),
            TreeEntry {
                path: "src".into(),
                mode: "040000".into(),
                kind: "tree".into(),
                sha: "t".into(),
                size: None,
            },
        ];
        let local = files(&[
            ("src/a.ts", "a\n"),
            ("src/b.ts", "B\n"),
            ("src/c/d.ts", "d\n"),
        ]);
        assert_eq!(
            plan(&remote, &local),
            Plan {
                write: vec!["src/b.ts".into(), "src/c/d.ts".into()],
                delete: vec!["README.md".into()],
            }
        );
        let same = files(&[
            ("README.md", "# x\n"),
            ("src/a.ts", "a\n"),
            ("src/b.ts", "b\n"),
        ]);
        assert!(plan(&remote, &same).is_empty());
        // Limited to a change's paths: what lies outside them is neither written nor deleted.
        let only: BTreeSet<String> = ["src/b.ts".to_string(), "gone.ts".to_string()].into();
        assert_eq!(
            plan_within(&remote, &local, Some(&only)),
            Plan {
                write: vec!["src/b.ts".into()],
                delete: vec![],
            }
        );
        let only: BTreeSet<String> = ["README.md".to_string()].into();
        assert_eq!(
            plan_within(&remote, &local, Some(&only)).delete,
            vec!["README.md".to_string()]
        );
    }

    /// A tiny in-memory repository behind the HTTP port: one branch, blobs and trees by sha.
    struct Repo {
        head: RefCell<String>,
        trees: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
        commits: RefCell<BTreeMap<String, String>>,
        sent: RefCell<Vec<(HttpMethod, String, Option<Value>)>>,
        /// Moves the branch under us right before the ref update.
        race: bool,
    }

    impl Repo {
        fn new(files: &[(&str, &str)], race: bool) -> Repo {
            let tree: BTreeMap<String, String> = files
                .iter()
                .map(|(p, c)| (p.to_string(), git_blob_sha(c.as_bytes())))
                .collect();
            Repo {
                head: RefCell::new("c0".into()),
                trees: RefCell::new([("t0".to_string(), tree)].into()),
                commits: RefCell::new([("c0".to_string(), "t0".to_string())].into()),
                sent: RefCell::default(),
                race,
            }
        }
    }

    fn ok(v: Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![],
            body: v.to_string().into_bytes(),
        }
    }

    impl GitHubHttp for Repo {
        async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
            let body: Option<Value> = req
                .body
                .as_deref()
                .map(|b| serde_json::from_str(b).unwrap());
            let path = req
                .url
                .trim_start_matches("http://gh.test/repos/o/r/git/")
                .to_string();
            self.sent
                .borrow_mut()
                .push((req.method, path.clone(), body.clone()));
            let n = self.sent.borrow().len();
            Ok(match (req.method, path.as_str()) {
                (HttpMethod::Get, "ref/heads/main") => {
                    ok(json!({"object": {"sha": *self.head.borrow()}}))
                }
                (HttpMethod::Get, p) if p.starts_with("commits/") => {
                    let t = self.commits.borrow()[&p[8..]].clone();
                    ok(json!({"tree": {"sha": t}}))
                }
                (HttpMethod::Get, p) if p.starts_with("trees/") => {
                    let id = p[6..].trim_end_matches("?recursive=1");
                    let tree: Vec<Value> = self.trees.borrow()[id]
                        .iter()
                        .map(
                            |(p, s)| json!({"path": p, "mode": "100644", "type": "blob", "sha": s}),
                        )
                        .collect();
                    ok(json!({"sha": id, "tree": tree, "truncated": false}))
                }
                (HttpMethod::Post, "blobs") => {
                    use base64::Engine;
                    let b = body.unwrap();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b["content"].as_str().unwrap())
                        .unwrap();
                    ok(json!({"sha": git_blob_sha(&bytes)}))
                }
                (HttpMethod::Post, "trees") => {
                    let b = body.unwrap();
                    let mut t = self.trees.borrow()[b["base_tree"].as_str().unwrap()].clone();
                    for e in b["tree"].as_array().unwrap() {
                        let p = e["path"].as_str().unwrap().to_string();
                        match e["sha"].as_str() {
                            Some(s) => t.insert(p, s.to_string()),
                            None => t.remove(&p),
                        };
                    }
                    let id = format!("t{n}");
                    self.trees.borrow_mut().insert(id.clone(), t);
                    ok(json!({"sha": id}))
                }
                (HttpMethod::Post, "commits") => {
                    let b = body.unwrap();
                    let id = format!("c{n}");
                    self.commits
                        .borrow_mut()
                        .insert(id.clone(), b["tree"].as_str().unwrap().to_string());
                    ok(json!({"sha": id}))
                }
                (HttpMethod::Patch, "refs/heads/main") => {
                    if self.race {
                        return Ok(HttpResponse {
                            status: 422,
                            headers: vec![],
                            body: json!({"message": "Update is not a fast forward"})
                                .to_string()
                                .into_bytes(),
                        });
                    }
                    *self.head.borrow_mut() = body.unwrap()["sha"].as_str().unwrap().to_string();
                    ok(json!({}))
                }
                other => panic!("unexpected {other:?}"),
            })
        }
        async fn sleep(&self, _ms: u64) {}
    }

    fn req<'a>(files: &'a BTreeMap<String, Vec<u8>>, expected: Option<&'a str>) -> PushRequest<'a> {
        PushRequest {
            owner: "o",
            repo: "r",
            branch: "main",
            expected_head: expected,
            files,
            only: None,
            message: "Update from Byte",
        }
    }

    fn head_files(repo: &Repo) -> BTreeMap<String, String> {
        let c = repo.head.borrow().clone();
        let t = repo.commits.borrow()[&c].clone();
        repo.trees.borrow()[&t].clone()
    }

    #[test]
    fn a_push_uploads_only_changes_and_moves_the_branch_without_force() {
        let repo = Repo::new(
            &[("README.md", "# r\n"), ("a.txt", "a\n"), ("b.txt", "b\n")],
            false,
        );
        let gh = GitHub::new(&repo, "http://gh.test", "t");
        let local = files(&[("a.txt", "a\n"), ("b.txt", "B\n"), ("c/d.txt", "d\n")]);
        let pushed = futures_executor::block_on(push(&gh, &req(&local, Some("c0")))).unwrap();
        assert!(pushed.committed);
        assert_eq!(pushed.plan.write, vec!["b.txt", "c/d.txt"]);
        assert_eq!(pushed.plan.delete, vec!["README.md"]);
        let blobs = repo
            .sent
            .borrow()
            .iter()
            .filter(|(_, p, _)| p == "blobs")
            .count();
        assert_eq!(blobs, 2, "only changed files are uploaded");
        let sent = repo.sent.borrow();
        let commit = sent.iter().find(|(_, p, _)| p == "commits").unwrap();
        assert_eq!(commit.2.as_ref().unwrap()["parents"], json!(["c0"]));
        let patch = sent
            .iter()
            .find(|(m, _, _)| *m == HttpMethod::Patch)
            .unwrap();
        assert_eq!(patch.2.as_ref().unwrap()["force"], json!(false));
        drop(sent);
        let now = head_files(&repo);
        let want: BTreeMap<String, String> = local
            .iter()
            .map(|(p, c)| (p.clone(), git_blob_sha(c)))
            .collect();
        assert_eq!(now, want);
        // Pushing the same files again commits nothing.
        let again =
            futures_executor::block_on(push(&gh, &req(&local, Some(&pushed.head)))).unwrap();
        assert!(!again.committed && again.head == pushed.head);
    }

    #[test]
    fn a_moved_branch_is_a_conflict_and_nothing_is_written() {
        let repo = Repo::new(&[("a.txt", "a\n")], false);
        let gh = GitHub::new(&repo, "http://gh.test", "t");
        let local = files(&[("a.txt", "changed\n")]);
        let e = futures_executor::block_on(push(&gh, &req(&local, Some("c-ours")))).unwrap_err();
        assert_eq!(e.kind, GitHubErrorKind::RemoteMoved);
        assert!(e.message.contains("moved on"), "{}", e.message);
        assert!(repo
            .sent
            .borrow()
            .iter()
            .all(|(m, _, _)| *m == HttpMethod::Get));
        assert_eq!(*repo.head.borrow(), "c0");

        // Moved during the push: GitHub refuses the fast-forward; the branch stays.
        let repo = Repo::new(&[("a.txt", "a\n")], true);
        let gh = GitHub::new(&repo, "http://gh.test", "t");
        let e = futures_executor::block_on(push(&gh, &req(&local, Some("c0")))).unwrap_err();
        assert_eq!(e.kind, GitHubErrorKind::RemoteMoved);
        assert_eq!(*repo.head.borrow(), "c0");
    }
}
