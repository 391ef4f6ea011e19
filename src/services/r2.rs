//! R2 reads shared by the routes.

use crate::domain::error::ApiResult;
use crate::http::{internal, App};

/// The whole object at `key` in bucket `binding`; `None` when there is none.
pub async fn get_bytes(app: &App, binding: &str, key: &str) -> ApiResult<Option<Vec<u8>>> {
    let bucket = app.env.bucket(binding).map_err(internal)?;
    let Some(obj) = bucket.get(key).execute().await.map_err(internal)? else {
        return Ok(None);
    };
    match obj.body() {
        Some(body) => Ok(Some(body.bytes().await.map_err(internal)?)),
        None => Ok(None),
    }
}
