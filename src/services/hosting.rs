//! Where deployed apps run (`HOSTING`), behind the domain's [`AppHosting`] seam, and how a
//! request for a deployed app's hostname reaches it.
//!
//! - **loader** (`wrangler dev`): the live deployment's artifact is loaded from R2 into a Dynamic
//!   Worker through the `LOADER` binding ([`crate::domain::deploy::router`] builds its modules),
//!   keyed by app and content hash, so a new deployment is a new isolate and a cached one is
//!   reused. The loaded Worker has no bindings and, unless its template declares outbound
//!   access, no network (`globalOutbound: null`). Publishing is the live record switching.
//! - **dispatch** (production): the artifact is uploaded to the Workers for Platforms dispatch
//!   namespace through the Cloudflare API and served by `DISPATCHER.get(script)`.
//!
//! Both fail closed: an app with no live deployment (unknown, deleted, undeployed) is a 404.

use super::deployments;
use crate::domain::config::{Hosting, DEPLOYED_COMPATIBILITY_DATE};
use crate::domain::deploy::artifact::Bundle;
use crate::domain::deploy::cloudflare::DispatchTarget;
use crate::domain::deploy::manifest::{blob_key, manifest_key, Manifest};
use crate::domain::deploy::pipeline::{AppHosting, DeployFailure};
use crate::domain::deploy::router::{modules, LoaderModule, ROUTER_MODULE};
use crate::domain::error::{ApiError, ApiResult};
use crate::http::App;
use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::{Env, Request, Response};

const LOADER_BINDING: &str = "LOADER";

#[wasm_bindgen]
extern "C" {
    /// The `[[worker_loaders]]` binding (workers-rs has no type for it).
    type WorkerLoader;
    #[wasm_bindgen(method)]
    fn get(this: &WorkerLoader, id: &str, code: &js_sys::Function) -> WorkerStub;

    type WorkerStub;
    #[wasm_bindgen(method, js_name = getEntrypoint)]
    fn get_entrypoint(this: &WorkerStub) -> Entrypoint;

    type Entrypoint;
    #[wasm_bindgen(method, catch)]
    fn fetch(this: &Entrypoint, request: &web_sys::Request) -> Result<Promise, JsValue>;
}

fn js_err(what: &str, e: JsValue) -> ApiError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_default();
    worker::console_error!("hosting: {what}: {detail}");
    ApiError::new(
        502,
        crate::domain::error::ErrorCode::E007,
        "the deployed app could not be started",
    )
}

/// Sends `req` (already stripped of the platform's credentials) to `app_id`'s live deployment;
/// `Ok(None)` when the app has none.
pub async fn fetch_deployed(app: &App, app_id: &str, req: Request) -> ApiResult<Option<Response>> {
    let Some((number, hash)) = deployments::live(&app.db()?, app_id).await? else {
        return Ok(None);
    };
    match &app.cfg.deploy.hosting {
        Hosting::Loader => fetch_loaded(&app.env, app_id, number, &hash, req)
            .await
            .map(Some),
        Hosting::Dispatch(_) => {
            let script = crate::domain::deploy::cloudflare::script_name(app_id);
            let fetcher = app.env.dynamic_dispatcher("DISPATCHER")?.get(script)?;
            Ok(Some(fetcher.fetch_request(req).await?))
        }
    }
}

async fn fetch_loaded(
    env: &Env,
    app_id: &str,
    number: u32,
    hash: &str,
    req: Request,
) -> ApiResult<Response> {
    let loader: WorkerLoader = Reflect::get(env.as_ref(), &JsValue::from_str(LOADER_BINDING))
        .map_err(|e| js_err("no LOADER binding", e))?
        .unchecked_into();
    let (env2, app2) = (env.clone(), app_id.to_string());
    // Called only when no isolate for this id is warm; it lives until the fetch has answered.
    let code = Closure::<dyn FnMut() -> Promise>::new(move || {
        let (env, app_id) = (env2.clone(), app2.clone());
        future_to_promise(async move {
            worker_code(&env, &app_id, number)
                .await
                .map(JsValue::from)
                .map_err(|e| JsValue::from(js_sys::Error::new(&e)))
        })
    });
    let stub = loader.get(&format!("{app_id}:{hash}"), code.as_ref().unchecked_ref());
    let promise = stub
        .get_entrypoint()
        .fetch(req.inner())
        .map_err(|e| js_err("fetch refused", e))?;
    let answer = JsFuture::from(promise)
        .await
        .map_err(|e| js_err("the app failed", e))?;
    drop(code);
    Ok(Response::from(answer.unchecked_into::<web_sys::Response>()))
}

/// The loaded Worker's code for deployment `number`: `{compatibilityDate, mainModule, modules,
/// globalOutbound}`.
async fn worker_code(env: &Env, app_id: &str, number: u32) -> Result<Object, String> {
    let bucket = env
        .bucket(super::deploy::BUCKET)
        .map_err(|e| e.to_string())?;
    let bytes = super::r2::bucket_bytes(&bucket, &manifest_key(app_id, number))
        .await?
        .ok_or("the deployment's manifest is missing")?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut sources = std::collections::HashMap::new();
    for m in &manifest.modules {
        let b = super::r2::bucket_bytes(&bucket, &blob_key(app_id, &m.hash))
            .await?
            .ok_or_else(|| format!("module {} is missing", m.name))?;
        sources.insert(
            m.name.clone(),
            String::from_utf8(b).map_err(|_| format!("module {} is not UTF-8", m.name))?,
        );
    }
    let list = modules(&manifest, |name| sources.get(name).cloned())?;
    let mods = Object::new();
    let set = |o: &Object, k: &str, v: &JsValue| {
        Reflect::set(o, &JsValue::from_str(k), v)
            .map(|_| ())
            .map_err(|_| format!("cannot set {k}"))
    };
    for m in list {
        match m {
            LoaderModule::Js { name, source } => set(&mods, &name, &JsValue::from_str(&source))?,
            LoaderModule::Data { name, hash } => {
                let b = super::r2::bucket_bytes(&bucket, &blob_key(app_id, &hash))
                    .await?
                    .ok_or_else(|| format!("asset {hash} is missing"))?;
                let data = Object::new();
                set(
                    &data,
                    "data",
                    &js_sys::Uint8Array::from(b.as_slice()).buffer(),
                )?;
                set(&mods, &name, &data)?;
            }
        }
    }
    let code = Object::new();
    set(
        &code,
        "compatibilityDate",
        &JsValue::from_str(DEPLOYED_COMPATIBILITY_DATE),
    )?;
    set(&code, "mainModule", &JsValue::from_str(ROUTER_MODULE))?;
    set(&code, "modules", &mods)?;
    set(&code, "env", &Object::new())?;
    if !manifest.outbound {
        set(&code, "globalOutbound", &JsValue::NULL)?;
    }
    Ok(code)
}

/// The configured hosting.
pub enum Hosted<'a> {
    /// The live record is what serves: publishing has nothing to upload.
    Loader,
    Dispatch(&'a DispatchTarget),
}

impl<'a> Hosted<'a> {
    pub fn of(app: &'a App) -> Self {
        match &app.cfg.deploy.hosting {
            Hosting::Loader => Hosted::Loader,
            Hosting::Dispatch(target) => Hosted::Dispatch(target),
        }
    }
}

impl AppHosting for Hosted<'_> {
    async fn publish(&self, manifest: &Manifest, bundle: &Bundle) -> Result<(), DeployFailure> {
        match self {
            Hosted::Loader => Ok(()),
            Hosted::Dispatch(target) => super::dispatch::publish(target, manifest, bundle).await,
        }
    }

    async fn unpublish(&self, app_id: &str) -> Result<(), DeployFailure> {
        match self {
            Hosted::Loader => Ok(()),
            Hosted::Dispatch(target) => super::dispatch::unpublish(target, app_id).await,
        }
    }
}
