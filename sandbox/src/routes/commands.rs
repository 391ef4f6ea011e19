//! Command routes: run a command, type-check, production build. All three run through
//! `crate::exec` (process group, timeout, output caps) and log to the workspace.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use byte_protocol::exec::{
    BuildReply, BuildRequest, ExecRequest as ExecBody, TypecheckReply, TypecheckRequest,
    MAX_COMMAND_BYTES, MAX_TIMEOUT_MS,
};

use super::{AppState, JsonBody, Ws};
use crate::api_error::{ApiError, ApiResult};
use crate::builder::{self, CollectError, DEFAULT_BUILD_COMMAND, DEFAULT_OUTPUT_DIR};
use crate::deps::is_dependency_install;
use crate::errors::{dedupe, parse_output, Diagnostic, Kind};
use crate::exec::{self, ExecReply, ExecRequest};
use crate::files::parse_rel;
use crate::logs::{Source, Stream};
use crate::workspace::Workspace;

/// Builds and type-checks get at least this long unless the request says otherwise.
const MIN_BUILD_TIMEOUT: Duration = Duration::from_secs(300);
const MIN_TYPECHECK_TIMEOUT: Duration = Duration::from_secs(120);

fn timeout(requested: Option<u64>, default: Duration) -> ApiResult<Duration> {
    match requested {
        None => Ok(default),
        Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(_) => Err(ApiError::field(
            "timeoutMs",
            format!("timeoutMs must be between 1 and {MAX_TIMEOUT_MS}"),
        )),
    }
}

fn command(raw: Option<String>, default: Option<&str>) -> ApiResult<String> {
    let command = match (raw, default) {
        (Some(c), _) => c,
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err(ApiError::field("command", "`command` is required")),
    };
    if command.trim().is_empty() {
        return Err(ApiError::field("command", "`command` is empty"));
    }
    if command.len() > MAX_COMMAND_BYTES || command.contains('\0') {
        return Err(ApiError::field(
            "command",
            "`command` is too long or contains a NUL byte",
        ));
    }
    Ok(command)
}

fn env(vars: BTreeMap<String, String>) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        let valid = !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0');
        if !valid {
            return Err(ApiError::field(
                format!("env.{k}"),
                "invalid environment variable",
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

async fn run(state: &AppState, ws: &Workspace, req: ExecRequest) -> ApiResult<ExecReply> {
    ws.forget_linked_deps();
    let out = exec::run(
        &req,
        Some(ws.logs.clone()),
        &ws.execs,
        state.registry.jail(),
    )
    .await;
    // The command may have written anything: the next file write measures again.
    ws.forget_disk_measure().await;
    let out = out.map_err(|e| ApiError::io("cannot run the command", e))?;
    tracing::debug!(ws = %ws.id, code = ?out.exit_code, ms = out.duration_ms, "command finished");
    Ok(out)
}

/// `POST /v1/workspaces/{ws}/exec` `{"command","timeoutMs"?,"env"?}` → the command's outcome.
pub async fn exec(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<ExecBody>,
) -> ApiResult<Json<ExecReply>> {
    let ws = state.workspace(&id)?;
    let command = command(body.command, None)?;
    if body.env.is_empty() && is_dependency_install(&command) && ws.deps_up_to_date() {
        return Ok(Json(prepared_install(&ws, &command)));
    }
    let req = ExecRequest {
        command,
        cwd: ws.root.clone(),
        env: env(body.env)?,
        timeout: timeout(body.timeout_ms, state.config.command_timeout)?,
        output_cap: state.config.output_cap,
    };
    Ok(Json(run(&state, &ws, req).await?))
}

/// The answer to a dependency install with nothing to do: `node_modules` is the template's
/// prepared tree and `package.json` and its lockfile are the ones it was installed from.
fn prepared_install(ws: &Workspace, command: &str) -> ExecReply {
    let started = std::time::Instant::now();
    let note = "up to date: node_modules holds the template's prepared dependencies and \
                package.json and package-lock.json are unchanged; nothing to install";
    ws.logs
        .push(Stream::System, Source::Exec, &format!("$ {command}"));
    ws.logs.push(Stream::Stdout, Source::Exec, note);
    let duration_ms = started.elapsed().as_millis() as u64;
    ws.logs.push(
        Stream::System,
        Source::Exec,
        &format!("exited with code 0 in {duration_ms} ms"),
    );
    ExecReply {
        exit_code: Some(0),
        stdout: format!("{note}\n"),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        timed_out: false,
        duration_ms,
    }
}

fn errors_of(out: &ExecReply, ws: &Workspace) -> Vec<Diagnostic> {
    let mut all = parse_output(&out.stdout, ws.mapper());
    all.extend(parse_output(&out.stderr, ws.mapper()));
    dedupe(all)
}

/// Where the type checker keeps what it learnt between runs (inside `node_modules`, so it is
/// never one of the app's files, and goes away with the dependencies it describes).
pub const TSC_BUILD_INFO: &str = "node_modules/.cache/byte-sandbox/tsc.tsbuildinfo";

/// `POST /v1/workspaces/{ws}/typecheck` → `{"ok","errors",...}`: what `tsc --noEmit -p .`
/// reports for the workspace as it is when the request arrives. The workspace's warm type
/// checker answers (`crate::checker`: a long-lived compiler that re-reads every app file and
/// re-checks what changed); when it cannot (not started, crashed, hung, declined), the
/// workspace's own `tsc` runs instead, incremental: it reuses its previous program state
/// ([`TSC_BUILD_INFO`]), and compares file versions itself, so a stale state never hides an
/// error.
pub async fn typecheck(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<TypecheckRequest>,
) -> ApiResult<Json<TypecheckReply>> {
    let ws = state.workspace(&id)?;
    if !ws.checker.available() {
        return Err(ApiError::validation(
            "TypeScript is not installed in this workspace; run `npm install` first",
        ));
    }
    let limit = timeout(
        body.timeout_ms,
        state.config.command_timeout.max(MIN_TYPECHECK_TIMEOUT),
    )?;
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + limit.min(crate::checker::WARM_LIMIT);
    let why = match ws.checker.check(deadline).await {
        Ok(answer) => return Ok(Json(warm_reply(&ws, answer, started))),
        Err(failure) => failure,
    };
    ws.logs.push(
        Stream::System,
        Source::Exec,
        &format!("warm type checker {why}; running tsc"),
    );
    let req = ExecRequest {
        // The local compiler, never a download: `npx` could fetch an unrelated `tsc` package.
        command: format!(
            "./node_modules/.bin/tsc --noEmit -p . --incremental --tsBuildInfoFile {TSC_BUILD_INFO}"
        ),
        cwd: ws.root.clone(),
        env: Vec::new(),
        timeout: limit,
        output_cap: state.config.output_cap,
    };
    let out = run(&state, &ws, req).await?;
    let errors = errors_of(&out, &ws);
    Ok(Json(TypecheckReply {
        ok: out.success() && errors.is_empty(),
        errors,
        exit_code: out.exit_code,
        timed_out: out.timed_out,
        duration_ms: out.duration_ms,
    }))
}

/// The command the warm checker stands in for, as the workspace log shows it.
pub const WARM_CHECK_LOG: &str = "$ tsc --noEmit -p . (warm type checker)";

/// A warm check's reply, logged like the command it stands in for (the errors endpoint
/// reads type errors from the log either way).
fn warm_reply(
    ws: &Workspace,
    answer: crate::checker::Answer,
    started: std::time::Instant,
) -> TypecheckReply {
    ws.logs.push(Stream::System, Source::Exec, WARM_CHECK_LOG);
    for line in answer.output.lines() {
        ws.logs.push(Stream::Stdout, Source::Exec, line);
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    ws.logs.push(
        Stream::System,
        Source::Exec,
        &format!("exited with code {} in {duration_ms} ms", answer.exit_code),
    );
    let errors = dedupe(parse_output(&answer.output, ws.mapper()));
    TypecheckReply {
        ok: answer.exit_code == 0 && errors.is_empty(),
        errors,
        exit_code: Some(answer.exit_code),
        timed_out: false,
        duration_ms,
    }
}

/// `POST /v1/workspaces/{ws}/build` `{"command"?,"timeoutMs"?,"outputDir"?}` → the build's
/// outcome, parsed errors and, on success, every file of the output directory (base64).
pub async fn build(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<BuildRequest>,
) -> ApiResult<Json<BuildReply>> {
    let ws = state.workspace(&id)?;
    let out_dir = parse_rel(
        "outputDir",
        body.output_dir.as_deref().unwrap_or(DEFAULT_OUTPUT_DIR),
    )?;
    let req = ExecRequest {
        command: command(body.command, Some(DEFAULT_BUILD_COMMAND))?,
        cwd: ws.root.clone(),
        env: vec![("NODE_ENV".into(), "production".into())],
        timeout: timeout(
            body.timeout_ms,
            state.config.command_timeout.max(MIN_BUILD_TIMEOUT),
        )?,
        output_cap: state.config.output_cap,
    };
    let output = run(&state, &ws, req).await?;
    let mut errors = errors_of(&output, &ws);
    let mut files = Vec::new();
    let mut ok = output.success();
    if ok {
        let root = ws.root.clone();
        let cap = state.config.build_output_cap;
        let dir = out_dir.clone();
        let collected = tokio::task::spawn_blocking(move || builder::collect(&root, &dir, cap))
            .await
            .map_err(|_| ApiError::internal("collecting the build output was interrupted"))?;
        match collected {
            Ok(f) => files = f,
            Err(CollectError::Missing) => {
                ok = false;
                errors.push(Diagnostic {
                    file: None,
                    line: None,
                    column: None,
                    message: format!("the build succeeded but produced no `{out_dir}/` directory"),
                    kind: Kind::Build,
                });
            }
            Err(CollectError::TooLarge { total, cap }) => {
                return Err(ApiError::validation_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "build output `{out_dir}/` is {total} bytes, over the {cap}-byte limit"
                    ),
                ));
            }
            Err(CollectError::Path(e)) => {
                return Err(ApiError::field("outputDir", format!("`{out_dir}`: {e}")))
            }
            Err(CollectError::Io(e)) => {
                return Err(ApiError::io("cannot read the build output", e))
            }
        }
    } else if errors.is_empty() {
        let what = if output.timed_out {
            "timed out"
        } else {
            "failed"
        };
        errors.push(Diagnostic {
            file: None,
            line: None,
            column: None,
            message: format!(
                "the build {what} (exit code {:?}); see stderr",
                output.exit_code
            ),
            kind: Kind::Build,
        });
    }
    Ok(Json(BuildReply {
        ok,
        output,
        errors,
        output_dir: out_dir.as_str().to_string(),
        files,
    }))
}
