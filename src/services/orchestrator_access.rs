//! Who may see an orchestration project: its stakeholder and the users it is shared with
//! (`orchestration_project_members`). Everyone else is told it does not exist (404 E002), so
//! the routes and the WebSocket hub ask here and nowhere else.

use super::db::{first, text};
use crate::domain::error::ApiResult;
use crate::domain::ids::{ProjectId, UserId};
use serde::Deserialize;
use worker::D1Database;

#[derive(Deserialize)]
struct Found {
    #[allow(dead_code)]
    found: f64,
}

/// The rule as a SQL condition on the project row `alias`, for the user bound at `?{param}`:
/// every orchestrator query (the repository's included) puts it in its WHERE clause.
pub fn visible(alias: &str, param: usize) -> String {
    format!(
        "({alias}.stakeholder_user_id = ?{param} OR EXISTS (SELECT 1 FROM orchestration_project_members m \
         WHERE m.project_id = {alias}.id AND m.user_id = ?{param}))"
    )
}

/// Whether `user` may see (and so subscribe to and change) `project`.
pub async fn can_view(db: &D1Database, user: &UserId, project: &ProjectId) -> ApiResult<bool> {
    let row: Option<Found> = first(
        db,
        &format!(
            "SELECT 1 AS found FROM orchestration_projects p WHERE p.id = ?1 AND {}",
            visible("p", 2)
        ),
        &[text(project.as_str()), text(user.as_str())],
    )
    .await?;
    Ok(row.is_some())
}
