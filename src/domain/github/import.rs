//! A repository's files imported as an app (a project created with `source: github`): the
//! default branch's head → its tree (recursive) → the text files within the bounds, each read
//! as a blob, through the GitHub REST API (no git, no clone).
//!
//! Invariants:
//! - at most [`MAX_IMPORT_FILES`] files, none over [`MAX_IMPORT_FILE_BYTES`], together at most
//!   [`MAX_IMPORT_BYTES`]: a file beyond a bound is skipped with a note saying which, never cut;
//!   the bounds also keep one request within the Workers' subrequest limit (one call per file);
//! - only text is imported: a file that is not UTF-8 or contains a NUL byte is skipped as binary
//!   (apps' files are text; images and fonts stay in the repository);
//! - what is skipped is reported, path by path, in path order; submodules and directories are
//!   not files.

use super::client::{GitHub, GitHubError, GitHubErrorKind, GitHubHttp, TreeEntry};
use serde::Serialize;
use std::collections::BTreeMap;

pub const MAX_IMPORT_FILES: usize = 200;
pub const MAX_IMPORT_FILE_BYTES: u64 = 200_000;
pub const MAX_IMPORT_BYTES: u64 = 4_000_000;

/// A file left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The repository's files as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub default_branch: String,
    /// The commit the files come from.
    pub commit: String,
    pub files: BTreeMap<String, String>,
    pub skipped: Vec<Skipped>,
}

/// Extensions of files that are never text (skipped without reading them).
const BINARY_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "ico", "bmp", "avif", "woff", "woff2", "ttf", "otf",
    "eot", "mp3", "mp4", "wav", "ogg", "webm", "pdf", "zip", "gz", "tgz", "jar", "wasm", "exe",
];

fn binary_by_name(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| BINARY_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Which of the tree's files to read (in path order), and which are skipped before reading,
/// by the bounds (sizes as the tree lists them).
pub fn select(tree: &[TreeEntry]) -> (Vec<TreeEntry>, Vec<Skipped>) {
    let mut blobs: Vec<&TreeEntry> = tree.iter().filter(|e| e.kind == "blob").collect();
    blobs.sort_by(|a, b| a.path.cmp(&b.path));
    let (mut take, mut skipped) = (Vec::new(), Vec::new());
    let mut total = 0u64;
    let skip = |e: &TreeEntry, reason: String| Skipped {
        path: e.path.clone(),
        reason,
    };
    for e in blobs {
        let size = e.size.unwrap_or(0);
        if binary_by_name(&e.path) {
            skipped.push(skip(e, "binary file".into()));
        } else if size > MAX_IMPORT_FILE_BYTES {
            skipped.push(skip(
                e,
                format!("larger than {MAX_IMPORT_FILE_BYTES} bytes ({size})"),
            ));
        } else if take.len() >= MAX_IMPORT_FILES {
            skipped.push(skip(
                e,
                format!("beyond the first {MAX_IMPORT_FILES} files"),
            ));
        } else if total + size > MAX_IMPORT_BYTES {
            skipped.push(skip(e, format!("beyond {MAX_IMPORT_BYTES} bytes in all")));
        } else {
            total += size;
            take.push(e.clone());
        }
    }
    (take, skipped)
}

/// A blob's bytes as an app's text file, or why it is skipped.
pub fn as_text(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() as u64 > MAX_IMPORT_FILE_BYTES {
        return Err(format!("larger than {MAX_IMPORT_FILE_BYTES} bytes"));
    }
    match String::from_utf8(bytes) {
        Ok(s) if !s.contains('\0') => Ok(s),
        _ => Err("binary file".into()),
    }
}

/// Imports `owner/repo`'s default branch (see the module header).
pub async fn import<H: GitHubHttp>(
    gh: &GitHub<'_, H>,
    owner: &str,
    repo: &str,
) -> Result<Imported, GitHubError> {
    let r = gh.repo(owner, repo).await?;
    let commit = gh
        .branch_head(owner, repo, &r.default_branch)
        .await?
        .ok_or_else(|| {
            GitHubError::new(
                GitHubErrorKind::EmptyRepository,
                format!(
                    "{owner}/{repo} has no commit on its default branch `{}`: there is nothing to import",
                    r.default_branch
                ),
            )
        })?;
    let tree = gh.commit_tree(owner, repo, &commit).await?;
    let entries = gh.tree(owner, repo, &tree).await?;
    let (take, mut skipped) = select(&entries);
    let mut files = BTreeMap::new();
    for e in take {
        match as_text(gh.blob(owner, repo, &e.sha).await?) {
            Ok(text) => {
                files.insert(e.path, text);
            }
            Err(reason) => skipped.push(Skipped {
                path: e.path,
                reason,
            }),
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Imported {
        default_branch: r.default_branch,
        commit,
        files,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::super::client::{HttpMethod, HttpRequest, HttpResponse};
    use super::super::push::git_blob_sha;
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn blob(path: &str, size: u64) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            mode: "100644".into(),
            kind: "blob".into(),
            sha: format!("sha-{path}"),
            size: Some(size),
        }
    }

    #[test]
    fn selection_keeps_the_bounds_and_says_what_it_skipped() {
        let mut tree = vec![
            blob("src/b.ts", 10),
            blob("src/a.ts", 10),
            blob("logo.PNG", 10),
            blob("big.json", MAX_IMPORT_FILE_BYTES + 1),
            TreeEntry {
                kind: "tree".into(),
                size: None,
                ..blob("src", 0)
            },
            TreeEntry {
                kind: "commit".into(),
                size: None,
                ..blob("vendor/lib", 0)
            },
        ];
        let (take, skipped) = select(&tree);
        let paths: Vec<&str> = take.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["src/a.ts", "src/b.ts"]);
        let why: Vec<(&str, &str)> = skipped
            .iter()
            .map(|s| (s.path.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(why[0].0, "big.json");
        assert!(why[0].1.starts_with("larger than"));
        assert_eq!(why[1], ("logo.PNG", "binary file"));
        assert_eq!(why.len(), 2, "directories and submodules are not files");

        // The count and total bounds.
        tree = (0..MAX_IMPORT_FILES + 3)
            .map(|i| blob(&format!("f{i:04}.ts"), 1))
            .collect();
        let (take, skipped) = select(&tree);
        assert_eq!((take.len(), skipped.len()), (MAX_IMPORT_FILES, 3));
        assert!(skipped[0].reason.contains("first"));
        let n = (MAX_IMPORT_BYTES / MAX_IMPORT_FILE_BYTES) as usize;
        tree = (0..n + 1)
            .map(|i| blob(&format!("f{i}.ts"), MAX_IMPORT_FILE_BYTES))
            .collect();
        let (take, skipped) = select(&tree);
        assert_eq!((take.len(), skipped.len()), (n, 1));
        assert!(skipped[0].reason.contains("in all"));
    }

    #[test]
    fn only_text_is_imported() {
        assert_eq!(as_text(b"hi\n".to_vec()), Ok("hi\n".into()));
        assert_eq!(as_text(vec![0xff, 0xfe]), Err("binary file".into()));
        assert_eq!(as_text(b"a\0b".to_vec()), Err("binary file".into()));
    }

    /// A repository behind the HTTP port: `main` at c1, its tree, blobs in base64 with line
    /// breaks as GitHub sends them.
    struct Repo {
        files: Vec<(&'static str, Vec<u8>)>,
        empty: bool,
    }

    fn ok(v: serde_json::Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![],
            body: v.to_string().into_bytes(),
        }
    }

    impl GitHubHttp for Repo {
        async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
            assert_eq!(req.method, HttpMethod::Get);
            let path = req.url.trim_start_matches("http://gh.test/repos/o/r");
            Ok(match path {
                "" => ok(
                    json!({"name": "r", "full_name": "o/r", "owner": {"login": "o"}, "html_url": "https://github.com/o/r", "default_branch": "trunk", "private": false}),
                ),
                "/git/ref/heads/trunk" if self.empty => HttpResponse {
                    status: 404,
                    headers: vec![],
                    body: br#"{"message":"Not Found"}"#.to_vec(),
                },
                "/git/ref/heads/trunk" => ok(json!({"object": {"sha": "c1"}})),
                "/git/commits/c1" => ok(json!({"tree": {"sha": "t1"}})),
                "/git/trees/t1?recursive=1" => ok(json!({"truncated": false, "tree":
                    self.files.iter().map(|(p, c)| json!({"path": p, "mode": "100644", "type": "blob", "sha": git_blob_sha(c), "size": c.len()})).collect::<Vec<_>>()})),
                p if p.starts_with("/git/blobs/") => {
                    let sha = &p["/git/blobs/".len()..];
                    let (_, c) = self
                        .files
                        .iter()
                        .find(|(_, c)| git_blob_sha(c) == sha)
                        .unwrap();
                    let b64 = base64::engine::general_purpose::STANDARD.encode(c);
                    let wrapped: Vec<String> = b64
                        .as_bytes()
                        .chunks(60)
                        .map(|l| String::from_utf8(l.to_vec()).unwrap())
                        .collect();
                    ok(
                        json!({"sha": sha, "encoding": "base64", "content": wrapped.join("\n") + "\n"}),
                    )
                }
                other => panic!("unexpected {other}"),
            })
        }
        async fn sleep(&self, _ms: u64) {}
    }

    #[test]
    fn a_repository_is_read_from_its_default_branch() {
        let long = "export const x = 1;\n".repeat(20);
        let repo = Repo {
            files: vec![
                ("src/App.tsx", long.clone().into_bytes()),
                ("README.md", b"# r\n".to_vec()),
                ("data.bin", vec![0, 1, 2, 255]),
            ],
            empty: false,
        };
        let gh = GitHub::new(&repo, "http://gh.test", "t");
        let got = futures_executor::block_on(import(&gh, "o", "r")).unwrap();
        assert_eq!(got.default_branch, "trunk");
        assert_eq!(got.commit, "c1");
        assert_eq!(got.files.len(), 2);
        assert_eq!(got.files["src/App.tsx"], long);
        assert_eq!(
            got.skipped,
            vec![Skipped {
                path: "data.bin".into(),
                reason: "binary file".into()
            }]
        );
        let empty = Repo {
            files: vec![],
            empty: true,
        };
        let gh = GitHub::new(&empty, "http://gh.test", "t");
        let e = futures_executor::block_on(import(&gh, "o", "r")).unwrap_err();
        assert_eq!(e.kind, GitHubErrorKind::EmptyRepository);
        assert!(e.message.contains("nothing to import"), "{}", e.message);
    }
}
