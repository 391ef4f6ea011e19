use super::*;
use crate::domain::deploy::manifest::MAX_ARTIFACT_BYTES;
use byte_protocol::DiagnosticKind;
use futures_executor::block_on;
use std::cell::RefCell;

#[derive(Default)]
struct Fakes {
    build: RefCell<Option<Result<BuildOutput, DeployFailure>>>,
    stored: RefCell<Vec<Manifest>>,
    store_fails: RefCell<bool>,
    published: RefCell<Vec<Manifest>>,
    publish_fails: RefCell<Option<DeployFailure>>,
    records: RefCell<Vec<String>>,
    events: RefCell<Vec<AgentEvent>>,
}

impl Builder for Fakes {
    async fn build(&self) -> Result<BuildOutput, DeployFailure> {
        self.build.borrow_mut().take().expect("one build")
    }
}

impl Artifacts for Fakes {
    async fn store(&self, manifest: &Manifest, _bundle: &Bundle) -> Result<(), String> {
        if *self.store_fails.borrow() {
            return Err("R2 unavailable".into());
        }
        self.stored.borrow_mut().push(manifest.clone());
        Ok(())
    }
}

impl AppHosting for Fakes {
    async fn publish(&self, manifest: &Manifest, _bundle: &Bundle) -> Result<(), DeployFailure> {
        if let Some(f) = self.publish_fails.borrow().clone() {
            return Err(f);
        }
        self.published.borrow_mut().push(manifest.clone());
        Ok(())
    }
    async fn unpublish(&self, _app_id: &str) -> Result<(), DeployFailure> {
        Ok(())
    }
}

impl Records for Fakes {
    async fn live(&self, number: u32, url: &str, size: u64, _hash: &str) -> Result<(), String> {
        self.records
            .borrow_mut()
            .push(format!("live {number} {url} {size}"));
        Ok(())
    }
    async fn failed(&self, number: u32, failure: &DeployFailure) -> Result<(), String> {
        self.records
            .borrow_mut()
            .push(format!("failed {number}: {}", failure.message));
        Ok(())
    }
}

impl Events for Fakes {
    fn emit(&self, ev: AgentEvent) {
        self.events.borrow_mut().push(ev);
    }
}

fn job(layout: BuildLayout) -> Job {
    Job {
        app_id: "app1".into(),
        number: 2,
        source_version: 4,
        created_at: 1_000,
        url: "http://app1.apps.localhost:8787/".into(),
        layout,
    }
}

fn spa() -> BuildLayout {
    BuildLayout {
        worker_entry: None,
        outbound: false,
    }
}

fn output(files: &[(&str, &str)]) -> BuildOutput {
    BuildOutput {
        files: files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect(),
    }
}

fn run(f: &Fakes, job: &Job) -> Result<Manifest, DeployFailure> {
    block_on(
        Deployer {
            builder: f,
            artifacts: f,
            hosting: f,
            records: f,
            events: f,
        }
        .deploy(job),
    )
}

fn kinds(f: &Fakes) -> Vec<&'static str> {
    f.events.borrow().iter().map(|e| e.sse_name()).collect()
}

#[test]
fn a_build_becomes_a_stored_published_live_deployment() {
    let f = Fakes::default();
    *f.build.borrow_mut() = Some(Ok(output(&[
        ("index.html", "<div id=root></div>"),
        ("assets/index-abc.js", "console.log(1)"),
    ])));
    let m = run(&f, &job(spa())).unwrap();
    assert_eq!(m.number, 2);
    assert_eq!(m.source_version, 4);
    let paths: Vec<_> = m.assets.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["/assets/index-abc.js", "/index.html"]);
    assert_eq!(m.assets[0].content_type, "text/javascript; charset=utf-8");
    assert_eq!(f.stored.borrow().len(), 1);
    assert_eq!(f.published.borrow().len(), 1);
    assert_eq!(
        *f.records.borrow(),
        [format!(
            "live 2 http://app1.apps.localhost:8787/ {}",
            19 + 14
        )]
    );
    assert_eq!(
        kinds(&f),
        [
            "deploy_started",
            "deploy_progress",
            "deploy_progress",
            "deploy_progress",
            "deploy_complete"
        ]
    );
}

#[test]
fn a_failed_build_publishes_nothing_and_reports_its_errors() {
    let f = Fakes::default();
    let diag = Diagnostic {
        file: Some("src/App.tsx".into()),
        line: Some(3),
        column: Some(1),
        message: "Cannot find name 'x'".into(),
        kind: DiagnosticKind::Typescript,
    };
    *f.build.borrow_mut() = Some(Err(DeployFailure {
        message: "the build failed".into(),
        errors: vec![diag.clone()],
    }));
    let err = run(&f, &job(spa())).unwrap_err();
    assert_eq!(err.errors, std::slice::from_ref(&diag));
    assert!(f.stored.borrow().is_empty() && f.published.borrow().is_empty());
    assert_eq!(*f.records.borrow(), ["failed 2: the build failed"]);
    let last = f.events.borrow().last().cloned().unwrap();
    assert_eq!(
        last,
        AgentEvent::DeployFailed {
            deployment: 2,
            code: ErrorCode::E007,
            message: "the build failed".into(),
            errors: vec![diag],
        }
    );
}

#[test]
fn a_failed_publish_or_store_leaves_nothing_live() {
    let f = Fakes::default();
    *f.build.borrow_mut() = Some(Ok(output(&[("index.html", "x")])));
    *f.publish_fails.borrow_mut() = Some(DeployFailure::new("Cloudflare said no"));
    assert_eq!(
        run(&f, &job(spa())).unwrap_err().message,
        "Cloudflare said no"
    );
    assert_eq!(*f.records.borrow(), ["failed 2: Cloudflare said no"]);

    let f = Fakes::default();
    *f.build.borrow_mut() = Some(Ok(output(&[("index.html", "x")])));
    *f.store_fails.borrow_mut() = true;
    let err = run(&f, &job(spa())).unwrap_err();
    assert!(err.message.contains("R2 unavailable"), "{err:?}");
    assert!(f.published.borrow().is_empty());
}

#[test]
fn outputs_that_cannot_be_served_are_refused() {
    let no_index = bundle_of(output(&[("app.js", "1")]), &spa()).unwrap_err();
    assert!(no_index.message.contains("index.html"));
    let big = BuildOutput {
        files: vec![
            (
                "index.html".into(),
                vec![b'x'; (MAX_ARTIFACT_BYTES / 2) as usize],
            ),
            (
                "b.bin".into(),
                vec![0; (MAX_ARTIFACT_BYTES / 2 + 1) as usize],
            ),
        ],
    };
    assert!(bundle_of(big, &spa())
        .unwrap_err()
        .message
        .contains("100 MB"));
    let worker = BuildLayout {
        worker_entry: Some("_worker.js".into()),
        outbound: false,
    };
    assert!(bundle_of(output(&[("index.html", "x")]), &worker)
        .unwrap_err()
        .message
        .contains("_worker.js"));
}

#[test]
fn the_worker_entry_becomes_the_main_module_not_an_asset() {
    let layout = BuildLayout {
        worker_entry: Some("_worker.js".into()),
        outbound: true,
    };
    let b = bundle_of(
        output(&[("index.html", "x"), ("_worker.js", "export default {}")]),
        &layout,
    )
    .unwrap();
    assert_eq!(b.main_module.as_deref(), Some("_worker.js"));
    assert_eq!(b.modules.len(), 1);
    assert!(b.assets.iter().all(|a| a.path != "/_worker.js"));
}

#[test]
fn a_rollback_republishes_the_stored_content_under_a_new_number() {
    let f = Fakes::default();
    let bundle = bundle_of(output(&[("index.html", "old")]), &spa()).unwrap();
    let old = Manifest::of("app1", 1, 1, 10, &bundle, false);
    let m = block_on(
        Deployer {
            builder: &f,
            artifacts: &f,
            hosting: &f,
            records: &f,
            events: &f,
        }
        .rollback(&job(spa()), old.clone(), bundle),
    )
    .unwrap();
    assert_eq!(m.number, 2);
    assert_eq!(m.content_hash(), old.content_hash());
    assert_eq!(m.source_version, 1);
    assert_eq!(f.published.borrow().len(), 1);
    assert!(f.records.borrow()[0].starts_with("live 2 "));
}
