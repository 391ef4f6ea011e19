//! R2 reads shared by the routes.

use crate::domain::error::ApiResult;
use crate::http::App;

/// The whole object at `key` in bucket `binding`; `None` when there is none.
pub async fn get_bytes(app: &App, binding: &str, key: &str) -> ApiResult<Option<Vec<u8>>> {
    let bucket = app.env.bucket(binding)?;
    let Some(obj) = bucket.get(key).execute().await? else {
        return Ok(None);
    };
    match obj.body() {
        Some(body) => Ok(Some(body.bytes().await?)),
        None => Ok(None),
    }
}
