//! Entry point: reads configuration, binds the listener, prints the bound address on stdout
//! (so a parent process or test can use port 0), and serves until SIGTERM/SIGINT.

use std::process::ExitCode;

use byte_sandbox::{serve, shutdown_signal, Config, VERSION};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", byte_sandbox::config::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("byte-sandbox {VERSION}");
        return ExitCode::SUCCESS;
    }
    // `byte-sandbox prepare-deps`: install every template's dependencies into
    // SANDBOX_DEPS_DIR and exit (the container image runs it at build time).
    let prepare_only = args.first().is_some_and(|a| a == "prepare-deps");
    let args: Vec<String> = args.into_iter().skip(usize::from(prepare_only)).collect();
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .or_else(|| (prepare_only && k == "SANDBOX_SECRET").then(|| "unused".to_string()))
    };
    let config = match Config::from_env_and_args(env, args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("byte-sandbox: {e}\n\n{}", byte_sandbox::config::USAGE);
            return ExitCode::from(2);
        }
    };
    // Dev-server ports must lie outside the kernel's ephemeral range: any outgoing connection
    // may hold one of those (see `ports`).
    let ephemeral = byte_sandbox::ports::ephemeral_range();
    let usable = byte_sandbox::ports::usable_ports(&config.port_range, ephemeral.as_ref());
    let (lo, hi) = (config.port_range.start(), config.port_range.end());
    if let Some(e) = &ephemeral {
        let (elo, ehi) = (e.start(), e.end());
        if usable == 0 {
            eprintln!(
                "byte-sandbox: SANDBOX_PORT_RANGE {lo}-{hi} lies inside the kernel's ephemeral \
                 port range {elo}-{ehi} (/proc/sys/net/ipv4/ip_local_port_range), where outgoing \
                 connections take ports at any moment; choose ports outside it"
            );
            return ExitCode::from(2);
        }
        if usable <= u32::from(hi - lo) {
            tracing::warn!(
                "SANDBOX_PORT_RANGE {lo}-{hi} overlaps the kernel's ephemeral range {elo}-{ehi}: \
                 only the {usable} ports outside it are used"
            );
        }
    }
    // Before listening: an agent that cannot jail commands must not look ready.
    let jail = match byte_sandbox::jail::Jail::setup(&config).await {
        Ok(jail) => jail,
        Err(e) => {
            eprintln!("byte-sandbox: {e}");
            return ExitCode::from(1);
        }
    };
    if prepare_only {
        return prepare_deps(&config, jail).await;
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("byte-sandbox: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // One line on stdout, parsed by `make dev` and the integration tests.
    println!("byte-sandbox {VERSION} listening on http://{addr}");
    tracing::info!(%addr, root = %config.root.display(), confined = jail.is_confined(), "byte-sandbox started");

    match serve(config, jail, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("byte-sandbox: {e}");
            ExitCode::from(1)
        }
    }
}

async fn prepare_deps(config: &Config, jail: std::sync::Arc<byte_sandbox::jail::Jail>) -> ExitCode {
    let deps =
        byte_sandbox::deps::DepStore::new(config.deps_dir(), config.templates_dir.clone(), jail);
    let mut failed = false;
    for template in deps.templates() {
        match deps.prepare(&template).await {
            Ok(Some(p)) => println!("{template}: {}", p.node_modules.display()),
            Ok(None) => println!("{template}: no package-lock.json, nothing to prepare"),
            Err(e) => {
                eprintln!("byte-sandbox: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
