//! Apps: the record as stored, its JSON shapes, the create/patch bodies, and the list query with
//! the SQL it compiles to.
//!
//! Invariants: user text only ever reaches SQL as a bound parameter (LIKE wildcards in a search are
//! escaped); sort columns come from a closed enum, never from input.

use super::error::ApiResult;
use super::ids::{AppId, UserId};
use super::input::{JsonObject, Patch, Query};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strum::IntoStaticStr;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 1000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
pub const MAX_SEARCH: usize = 200;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Visibility {
    Public,
    /// What a row without a (known) visibility is: nobody else sees it.
    #[default]
    #[serde(other)]
    Private,
}

/// A row's visibility; `null` reads as private.
fn visibility_or_private<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Visibility, D::Error> {
    Ok(Option::<Visibility>::deserialize(d)?.unwrap_or_default())
}

impl Visibility {
    pub const ALL: [(&'static str, Visibility); 2] = [
        ("public", Visibility::Public),
        ("private", Visibility::Private),
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A row of `apps` as D1 returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct AppRecord {
    pub id: AppId,
    pub user_id: Option<UserId>,
    pub title: String,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "visibility_or_private")]
    pub visibility: Visibility,
    pub config: Option<String>,
    pub tags: Option<String>,
    pub files: Option<String>,
    pub container_state: Option<String>,
    pub is_deployed: Option<f64>,
    pub deploy_url: Option<String>,
    pub created_at: Option<f64>,
    pub updated_at: Option<f64>,
}

pub fn iso(seconds: Option<f64>) -> Option<String> {
    let s = seconds? as i64;
    Utc.timestamp_opt(s, 0)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn json_or(text: &Option<String>, fallback: Value) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(fallback)
}

/// List item (the spec's list shape plus a few fields the web app needs).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    #[schema(value_type = String)]
    pub id: AppId,
    pub title: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    #[schema(value_type = Vec<String>)]
    pub tags: Value,
    pub is_deployed: bool,
    pub deploy_url: Option<String>,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// Full app (the spec's get shape plus the summary fields).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    /// The app's files (path → content).
    #[schema(value_type = Object)]
    pub files: Value,
    /// The app's settings (e.g. its model configuration).
    #[schema(value_type = Object)]
    pub config: Value,
    /// The sandbox and terminal state; `null` for anyone but the owner.
    #[schema(value_type = Option<Object>)]
    pub container_state: Value,
    pub is_owner: bool,
}

impl AppRecord {
    pub fn summary(&self) -> AppSummary {
        AppSummary {
            id: self.id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            visibility: self.visibility,
            tags: json_or(&self.tags, Value::Array(vec![])),
            is_deployed: self.is_deployed.unwrap_or(0.0) != 0.0,
            deploy_url: self.deploy_url.clone(),
            user_id: self.user_id.clone(),
            created_at: iso(self.created_at),
            updated_at: iso(self.updated_at),
        }
    }

    pub fn detail(&self, viewer: Option<&UserId>) -> AppDetail {
        let is_owner = viewer.is_some() && viewer == self.user_id.as_ref();
        AppDetail {
            summary: self.summary(),
            files: json_or(&self.files, Value::Object(Map::new())),
            config: json_or(&self.config, Value::Object(Map::new())),
            // Sandbox/terminal state is the owner's business only.
            container_state: if is_owner {
                json_or(&self.container_state, Value::Null)
            } else {
                Value::Null
            },
            is_owner,
        }
    }

    /// Who may see it: the owner always, others only when public.
    pub fn visible_to(&self, viewer: Option<&UserId>) -> bool {
        self.visibility == Visibility::Public
            || (viewer.is_some() && viewer == self.user_id.as_ref())
    }
}

/// A validated create body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApp {
    pub title: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub tags: Vec<String>,
    pub config: Map<String, Value>,
}

impl NewApp {
    pub fn parse(mut o: JsonObject) -> ApiResult<Self> {
        let title = o.required_string("title", MAX_TITLE);
        let description = o.string("description", MAX_DESCRIPTION);
        let visibility = o.enumeration("visibility", &Visibility::ALL);
        let tags = o.string_list("tags", MAX_TAGS, MAX_TAG_CHARS);
        let config = o.object("config", MAX_CONFIG_BYTES);
        o.finish()?;
        Ok(Self {
            title: title.unwrap_or_default(),
            description: match description {
                Patch::Value(d) if !d.is_empty() => Some(d),
                _ => None,
            },
            visibility: match visibility {
                Patch::Value(v) => v,
                _ => Visibility::Private,
            },
            tags: match tags {
                Patch::Value(t) => t,
                _ => vec![],
            },
            config: match config {
                Patch::Value(c) => c,
                _ => Map::new(),
            },
        })
    }
}

/// A validated patch body: every field optional, at least one present.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPatch {
    pub title: Option<String>,
    pub description: Patch<String>,
    pub visibility: Option<Visibility>,
    pub tags: Option<Vec<String>>,
    pub config: Option<Map<String, Value>>,
}

impl AppPatch {
    pub fn parse(mut o: JsonObject) -> ApiResult<Self> {
        let title = match o.string("title", MAX_TITLE) {
            Patch::Value(t) if !t.is_empty() => Some(t),
            Patch::Absent => None,
            _ => {
                o.error("title", "must not be empty");
                None
            }
        };
        let description = match o.string("description", MAX_DESCRIPTION) {
            Patch::Value(d) if d.is_empty() => Patch::Null,
            other => other,
        };
        let visibility = match o.enumeration("visibility", &Visibility::ALL) {
            Patch::Value(v) => Some(v),
            Patch::Null => {
                o.error("visibility", "must be one of: public, private");
                None
            }
            Patch::Absent => None,
        };
        let tags = match o.string_list("tags", MAX_TAGS, MAX_TAG_CHARS) {
            Patch::Value(t) => Some(t),
            Patch::Null => Some(vec![]),
            Patch::Absent => None,
        };
        let config = match o.object("config", MAX_CONFIG_BYTES) {
            Patch::Value(c) => Some(c),
            Patch::Null => Some(Map::new()),
            Patch::Absent => None,
        };
        let nothing = title.is_none()
            && description.is_absent()
            && visibility.is_none()
            && tags.is_none()
            && config.is_none();
        o.finish()?;
        if nothing {
            return Err(super::error::ApiError::validation(
                "nothing to update: give at least one of title, description, visibility, tags, config",
            ));
        }
        Ok(Self {
            title,
            description,
            visibility,
            tags,
            config,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Date,
    Name,
    Updated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    Public,
    Private,
    All,
}

/// Whose apps a list covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The caller's own apps.
    Owner(UserId),
    /// Everyone's public apps.
    Public,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub search: Option<String>,
    pub sort: Sort,
    pub visibility: VisibilityFilter,
    pub page: u32,
    pub limit: u32,
}

/// A bound SQL parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArg {
    Text(String),
    Int(i64),
}

/// A compiled list: the row query and the count query over the same filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSql {
    pub rows: String,
    pub rows_args: Vec<SqlArg>,
    pub count: String,
    pub count_args: Vec<SqlArg>,
}

/// Escapes `\`, `%` and `_` so a search term matches literally under `LIKE … ESCAPE '\'`.
pub fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for c in term.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// An FTS5 phrase that matches `term` literally: wrapped in double quotes, inner quotes doubled.
pub fn fts_phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

pub const SUMMARY_COLUMNS: &str =
    "id, user_id, title, description, visibility, tags, is_deployed, deploy_url, created_at, updated_at";

impl ListQuery {
    pub fn parse(query: &str) -> ApiResult<Self> {
        let mut q = Query::parse(query);
        let search = q.string("search", MAX_SEARCH);
        let sort = q.enumeration(
            "sort",
            &[
                ("date", Sort::Date),
                ("name", Sort::Name),
                ("updated", Sort::Updated),
            ],
            Sort::Date,
        );
        let visibility = q.enumeration(
            "visibility",
            &[
                ("public", VisibilityFilter::Public),
                ("private", VisibilityFilter::Private),
                ("all", VisibilityFilter::All),
            ],
            VisibilityFilter::All,
        );
        let page = q.int("page", 1, 1, 1_000_000);
        let limit = q.int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
        q.finish()?;
        Ok(Self {
            search,
            sort,
            visibility,
            page,
            limit,
        })
    }

    pub fn total_pages(&self, total: u64) -> u64 {
        total.div_ceil(self.limit as u64)
    }

    pub fn to_sql(&self, scope: &Scope) -> ListSql {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        match scope {
            Scope::Owner(user) => {
                args.push(SqlArg::Text(user.to_string()));
                clauses.push(format!("user_id = ?{}", args.len()));
                match self.visibility {
                    VisibilityFilter::Public => clauses.push("visibility = 'public'".into()),
                    VisibilityFilter::Private => clauses.push("visibility = 'private'".into()),
                    VisibilityFilter::All => {}
                }
            }
            Scope::Public => clauses.push("visibility = 'public'".into()),
        }
        if let Some(term) = &self.search {
            if term.chars().count() >= 3 {
                // Trigram index: a quoted phrase is a literal substring (quotes doubled inside).
                args.push(SqlArg::Text(fts_phrase(term)));
                let n = args.len();
                clauses.push(format!(
                    "rowid IN (SELECT rowid FROM apps_search WHERE apps_search MATCH ?{n})"
                ));
            } else {
                args.push(SqlArg::Text(like_pattern(term)));
                let n = args.len();
                clauses.push(format!(
                    "(title LIKE ?{n} ESCAPE '\\' OR description LIKE ?{n} ESCAPE '\\')"
                ));
            }
        }
        let filter = clauses.join(" AND ");
        let order = match self.sort {
            Sort::Date => "created_at DESC, rowid DESC",
            Sort::Name => "title COLLATE NOCASE ASC, rowid ASC",
            Sort::Updated => "updated_at DESC, rowid DESC",
        };
        let count = format!("SELECT COUNT(*) AS total FROM apps WHERE {filter}");
        let count_args = args.clone();
        args.push(SqlArg::Int(self.limit as i64));
        let limit_n = args.len();
        args.push(SqlArg::Int((self.page as i64 - 1) * self.limit as i64));
        let offset_n = args.len();
        // Two statements, not a window count: `COUNT(*) OVER ()` would materialize every match
        // to count it, while the page query can stop after OFFSET + LIMIT rows in index order and
        // the count without a search is answered from the (user_id) index alone.
        let rows = format!(
            "SELECT {SUMMARY_COLUMNS} FROM apps WHERE {filter} ORDER BY {order} LIMIT ?{limit_n} OFFSET ?{offset_n}"
        );
        ListSql {
            rows,
            rows_args: args,
            count,
            count_args,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::parse_object;

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn list_defaults_and_sql() {
        let q = ListQuery::parse("").unwrap();
        assert_eq!(
            (q.page, q.limit, q.sort, q.visibility),
            (1, 20, Sort::Date, VisibilityFilter::All)
        );
        let sql = q.to_sql(&Scope::Owner("usr_1".into()));
        assert_eq!(sql.rows, format!("SELECT {SUMMARY_COLUMNS} FROM apps WHERE user_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2 OFFSET ?3"));
        assert_eq!(
            sql.rows_args,
            vec![
                SqlArg::Text("usr_1".into()),
                SqlArg::Int(20),
                SqlArg::Int(0)
            ]
        );
        assert_eq!(sql.count_args.len(), 1);
    }

    #[test]
    fn search_sort_page_visibility() {
        let q =
            ListQuery::parse("search=a_b&sort=name&page=3&limit=10&visibility=private").unwrap();
        let sql = q.to_sql(&Scope::Owner("u".into()));
        assert!(sql.rows.contains("visibility = 'private'"));
        assert!(sql
            .rows
            .contains("rowid IN (SELECT rowid FROM apps_search WHERE apps_search MATCH ?2)"));
        assert!(sql.rows.contains("ORDER BY title COLLATE NOCASE ASC"));
        assert_eq!(sql.rows_args[1], SqlArg::Text("\"a_b\"".into()));
        assert_eq!(sql.rows_args[3], SqlArg::Int(20));
        let public = q.to_sql(&Scope::Public);
        assert!(
            public.count.contains("visibility = 'public'") && !public.count.contains("user_id")
        );
        assert_eq!(q.total_pages(21), 3);
        assert_eq!(q.total_pages(0), 0);
    }

    #[test]
    fn short_terms_use_escaped_like_and_phrases_escape_quotes() {
        let q = ListQuery::parse("search=%25_").unwrap();
        let sql = q.to_sql(&Scope::Owner("u".into()));
        assert!(sql
            .count
            .contains("title LIKE ?2 ESCAPE '\\' OR description LIKE ?2"));
        assert_eq!(sql.count_args[1], SqlArg::Text("%\\%\\_%".into()));
        assert_eq!(fts_phrase(r#"say "hi""#), r#""say ""hi""""#);
    }

    #[test]
    fn bad_queries_name_fields() {
        let e = ListQuery::parse("page=0&limit=101&sort=size&visibility=secret").unwrap_err();
        for f in ["page", "limit", "sort", "visibility"] {
            assert!(e.fields.contains_key(f), "{f}");
        }
        assert!(ListQuery::parse(&format!("search={}", "x".repeat(201))).is_err());
        assert!(ListQuery::parse("page=-1").is_err());
    }

    #[test]
    fn create_body() {
        let a = NewApp::parse(
            parse_object(br#"{"title":" Todo ","visibility":"public","tags":["a"]}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (a.title.as_str(), a.visibility, a.tags.len()),
            ("Todo", Visibility::Public, 1)
        );
        let e = NewApp::parse(parse_object(br#"{"description": "x"}"#).unwrap()).unwrap_err();
        assert_eq!(e.fields["title"], "is required");
        let long = format!(r#"{{"title":"t","description":"{}"}}"#, "d".repeat(1001));
        assert!(NewApp::parse(parse_object(long.as_bytes()).unwrap())
            .unwrap_err()
            .fields
            .contains_key("description"));
    }

    #[test]
    fn patch_body() {
        assert!(AppPatch::parse(parse_object(b"{}").unwrap()).is_err());
        let p = AppPatch::parse(parse_object(br#"{"description":null}"#).unwrap()).unwrap();
        assert_eq!(p.description, Patch::Null);
        assert!(AppPatch::parse(parse_object(br#"{"title":""}"#).unwrap()).is_err());
        assert!(AppPatch::parse(parse_object(br#"{"visibility":null}"#).unwrap()).is_err());
    }

    #[test]
    fn visibility_rules() {
        let mut r: AppRecord = serde_json::from_value(
            serde_json::json!({"id":"a","user_id":"u1","title":"t","visibility":"private"}),
        )
        .unwrap();
        let (u1, u2) = (UserId::from("u1"), UserId::from("u2"));
        assert!(r.visible_to(Some(&u1)) && !r.visible_to(Some(&u2)) && !r.visible_to(None));
        r.visibility = Visibility::Public;
        assert!(r.visible_to(None));
        assert!(r.detail(Some(&u2)).container_state.is_null());
        // A row without a visibility (or an unknown one) is private.
        for v in [serde_json::Value::Null, serde_json::json!("secret")] {
            let r: AppRecord = serde_json::from_value(
                serde_json::json!({"id":"a","user_id":"u1","title":"t","visibility":v}),
            )
            .unwrap();
            assert_eq!(r.visibility, Visibility::Private);
        }
        let summary = serde_json::to_value(r.summary()).unwrap();
        assert_eq!(summary["visibility"], "public");
    }
}
