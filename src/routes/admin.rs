//! `/api/admin/*`: operator views, for users with the admin role (`ADMIN_EMAILS`).

use crate::domain::error::ApiResult;
use crate::domain::input::Query;
use crate::http::{json, App};
use crate::services::db;
use serde_json::json;
use worker::{Request, Response};

pub async fn users(req: Request, app: &App) -> ApiResult<Response> {
    let url = req.url()?;
    let mut q = Query::parse(url.query().unwrap_or(""));
    let page = q.int("page", 1, 1, 1_000_000);
    let limit = q.int("limit", 20, 1, 100);
    q.finish()?;
    let (rows, total) = db::list_users(&app.db()?, limit, (page as u64 - 1) * limit as u64).await?;
    let users: Vec<_> = rows.iter().map(|u| u.to_json()).collect();
    json(
        200,
        &json!({ "users": users, "total": total, "page": page, "totalPages": total.div_ceil(limit as u64) }),
    )
}
