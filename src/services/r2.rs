//! R2 access shared by the routes and the objects: whole-object reads, prefix deletion.

use crate::domain::error::ApiResult;
use worker::Bucket;

/// The whole object at `key` in `bucket`; `None` when there is none.
pub async fn get_bytes(bucket: &Bucket, key: &str) -> ApiResult<Option<Vec<u8>>> {
    let Some(obj) = bucket.get(key).execute().await? else {
        return Ok(None);
    };
    match obj.body() {
        Some(body) => Ok(Some(body.bytes().await?)),
        None => Ok(None),
    }
}

/// The whole object at `key` in `bucket`; `None` when there is none.
pub async fn bucket_bytes(bucket: &worker::Bucket, key: &str) -> Result<Option<Vec<u8>>, String> {
    let Some(obj) = bucket.get(key).execute().await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    match obj.body() {
        Some(body) => body.bytes().await.map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Deletes every object under `prefix` in bucket `binding`, a page (at most 1000 keys, one
/// batch delete) at a time; returns how many it deleted. Each page is listed from the start:
/// the keys of the previous page are gone, so what is listed is exactly what is left, and a
/// retry after a failure resumes without a cursor.
pub async fn delete_prefix(
    env: &worker::Env,
    binding: &str,
    prefix: &str,
) -> worker::Result<usize> {
    let bucket = env.bucket(binding)?;
    let mut deleted = 0;
    loop {
        let page = bucket.list().prefix(prefix).limit(1000).execute().await?;
        let keys: Vec<String> = page.objects().iter().map(|o| o.key()).collect();
        if keys.is_empty() {
            return Ok(deleted);
        }
        deleted += keys.len();
        bucket.delete_multiple(keys).await?;
    }
}
