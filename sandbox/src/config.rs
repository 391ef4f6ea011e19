//! Agent configuration, read once at startup from environment variables; each variable has a
//! matching command-line flag (`SANDBOX_ROOT` ↔ `--root`) that wins over the environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::jail::Limits;

pub const USAGE: &str = "\
usage: byte-sandbox [--listen ADDR] [--secret S] [--root DIR] [--templates-dir DIR]
                    [--port-range LO-HI] [--command-timeout-ms N] [--output-cap-bytes N]

Every flag has an environment variable, used when the flag is absent:
  SANDBOX_LISTEN              address to listen on (default 0.0.0.0:8080)
  SANDBOX_SECRET              shared secret for `Authorization: Bearer` (required;
                              prefer the variable: flags are visible in `ps`)
  SANDBOX_ROOT                directory holding workspaces (default /workspace)
  SANDBOX_TEMPLATES_DIR       directory holding templates (default /templates)
  SANDBOX_PORT_RANGE          dev-server ports, LO-HI (default 20000-20999); ports inside the
                              kernel's ephemeral range are never used
  SANDBOX_COMMAND_TIMEOUT_MS  default command timeout (default 60000)
  SANDBOX_OUTPUT_CAP_BYTES    cap on captured stdout and on stderr (default 1048576)
  SANDBOX_LOG_LINES           log lines kept per workspace (default 5000)
  SANDBOX_BUILD_OUTPUT_CAP_BYTES  cap on a build's returned files (default 26214400)
  SANDBOX_READY_TIMEOUT_MS    how long the preview waits for a starting dev server (default 15000)
  SANDBOX_DEPS_DIR            where each template's dependencies are installed once and shared
                              with its workspaces by hard links (default SANDBOX_ROOT/.deps)
  SANDBOX_PREPARE_DEPS        1 (default): prepare every template's dependencies at start, in
                              the background; 0: when a workspace first needs them
  SANDBOX_LOG                 agent log filter, e.g. `info` or `byte_sandbox=debug`
The jail (bubblewrap) every workspace command and dev server runs in:
  SANDBOX_BWRAP               path of bwrap (default: found in PATH)
  SANDBOX_JAIL_UID            host uid (and gid) of jailed processes when the agent is root
                              (default 100000)
  SANDBOX_NPM_CACHE           npm cache shared by jails (default: as root
                              /var/cache/byte-sandbox/npm, seeded from your npm cache;
                              otherwise NPM_CONFIG_CACHE or ~/.npm)
  SANDBOX_MEMORY_BYTES        data (heap) memory per process (default 4294967296)
  SANDBOX_MAX_PROCESSES       processes and threads per run (default 512)
  SANDBOX_FILE_SIZE_BYTES     largest file a process may write (default 268435456)
  SANDBOX_DISK_BYTES          disk per workspace (default 2147483648)
  SANDBOX_TMP_BYTES           size of each run's private /tmp (default 536870912)
  SANDBOX_UNCONFINED=1        UNSAFE: run commands without the jail, as this user
Jailed processes get an environment rebuilt from an allowlist (NPM_CONFIG_* and the
request's variables); unconfined ones inherit this one minus SANDBOX_SECRET.";

/// Flags and the variables they stand for.
const FLAGS: &[(&str, &str)] = &[
    ("--listen", "SANDBOX_LISTEN"),
    ("--secret", "SANDBOX_SECRET"),
    ("--root", "SANDBOX_ROOT"),
    ("--templates-dir", "SANDBOX_TEMPLATES_DIR"),
    ("--port-range", "SANDBOX_PORT_RANGE"),
    ("--command-timeout-ms", "SANDBOX_COMMAND_TIMEOUT_MS"),
    ("--output-cap-bytes", "SANDBOX_OUTPUT_CAP_BYTES"),
    ("--log-lines", "SANDBOX_LOG_LINES"),
    ("--build-output-cap-bytes", "SANDBOX_BUILD_OUTPUT_CAP_BYTES"),
    ("--ready-timeout-ms", "SANDBOX_READY_TIMEOUT_MS"),
    ("--deps-dir", "SANDBOX_DEPS_DIR"),
    ("--prepare-deps", "SANDBOX_PREPARE_DEPS"),
    ("--bwrap", "SANDBOX_BWRAP"),
    ("--jail-uid", "SANDBOX_JAIL_UID"),
    ("--npm-cache", "SANDBOX_NPM_CACHE"),
    ("--memory-bytes", "SANDBOX_MEMORY_BYTES"),
    ("--max-processes", "SANDBOX_MAX_PROCESSES"),
    ("--file-size-bytes", "SANDBOX_FILE_SIZE_BYTES"),
    ("--disk-bytes", "SANDBOX_DISK_BYTES"),
    ("--tmp-bytes", "SANDBOX_TMP_BYTES"),
    ("--unconfined", "SANDBOX_UNCONFINED"),
];

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub secret: String,
    pub root: PathBuf,
    pub templates_dir: PathBuf,
    pub port_range: RangeInclusive<u16>,
    pub command_timeout: Duration,
    pub output_cap: usize,
    pub log_lines: usize,
    pub build_output_cap: u64,
    pub ready_timeout: Duration,
    /// Prepared template dependencies; `None`: `SANDBOX_ROOT/.deps`.
    pub deps_dir: Option<PathBuf>,
    /// Prepare every template's dependencies at start (in the background).
    pub prepare_deps: bool,
    /// `SANDBOX_UNCONFINED=1`: run workspace processes without the jail (unsafe).
    pub unconfined: bool,
    /// bwrap's path; `None` looks it up in `PATH`.
    pub bwrap: Option<PathBuf>,
    /// Host uid and gid of jailed processes when the agent runs as root.
    pub jail_uid: u32,
    /// The npm cache jails share; `None` picks the default (see `USAGE`).
    pub npm_cache: Option<PathBuf>,
    pub limits: Limits,
}

impl Config {
    /// A configuration for tests and embedding: loopback, the given secret and root.
    pub fn new(secret: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            secret: secret.into(),
            root: root.into(),
            templates_dir: PathBuf::from("/templates"),
            port_range: 20000..=20999,
            command_timeout: Duration::from_millis(60_000),
            output_cap: 1024 * 1024,
            log_lines: 5000,
            build_output_cap: 25 * 1024 * 1024,
            ready_timeout: Duration::from_millis(15_000),
            deps_dir: None,
            prepare_deps: false,
            unconfined: false,
            bwrap: None,
            jail_uid: 100_000,
            npm_cache: None,
            limits: Limits::default(),
        }
    }

    /// Where prepared template dependencies live.
    pub fn deps_dir(&self) -> PathBuf {
        self.deps_dir
            .clone()
            .unwrap_or_else(|| self.root.join(".deps"))
    }

    /// Reads the configuration; `env` looks a variable up, `args` are the command-line
    /// arguments after the program name (`--flag value` or `--flag=value`).
    pub fn from_env_and_args(
        env: impl Fn(&str) -> Option<String>,
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let mut flags: HashMap<&'static str, String> = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let var = FLAGS
                .iter()
                .find(|(flag, _)| *flag == name)
                .map(|(_, var)| *var)
                .ok_or_else(|| format!("unknown argument `{arg}`"))?;
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("`{name}` needs a value"))?,
            };
            flags.insert(var, value);
        }
        let get = |var: &str| {
            flags
                .get(var)
                .cloned()
                .or_else(|| env(var))
                .filter(|v| !v.is_empty())
        };

        let mut config = Config::new(String::new(), "/workspace");
        config.listen = "0.0.0.0:8080".parse().expect("literal address");
        config.prepare_deps = true;
        config.secret = get("SANDBOX_SECRET").ok_or("SANDBOX_SECRET is required")?;
        if let Some(v) = get("SANDBOX_LISTEN") {
            config.listen = v.parse().map_err(|_| {
                format!("SANDBOX_LISTEN: `{v}` is not an address like 0.0.0.0:8080")
            })?;
        }
        if let Some(v) = get("SANDBOX_ROOT") {
            config.root = PathBuf::from(v);
        }
        if let Some(v) = get("SANDBOX_TEMPLATES_DIR") {
            config.templates_dir = PathBuf::from(v);
        }
        if let Some(v) = get("SANDBOX_PORT_RANGE") {
            config.port_range = parse_port_range(&v)?;
        }
        if let Some(v) = get("SANDBOX_COMMAND_TIMEOUT_MS") {
            config.command_timeout =
                Duration::from_millis(parse_positive("SANDBOX_COMMAND_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("SANDBOX_OUTPUT_CAP_BYTES") {
            config.output_cap = parse_positive("SANDBOX_OUTPUT_CAP_BYTES", &v)? as usize;
        }
        if let Some(v) = get("SANDBOX_LOG_LINES") {
            config.log_lines = parse_positive("SANDBOX_LOG_LINES", &v)? as usize;
        }
        if let Some(v) = get("SANDBOX_BUILD_OUTPUT_CAP_BYTES") {
            config.build_output_cap = parse_positive("SANDBOX_BUILD_OUTPUT_CAP_BYTES", &v)?;
        }
        if let Some(v) = get("SANDBOX_READY_TIMEOUT_MS") {
            config.ready_timeout =
                Duration::from_millis(parse_positive("SANDBOX_READY_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = get("SANDBOX_UNCONFINED") {
            config.unconfined = match v.trim() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(format!("SANDBOX_UNCONFINED: `{v}` is not 1 or 0")),
            };
        }
        if let Some(v) = get("SANDBOX_PREPARE_DEPS") {
            config.prepare_deps = match v.trim() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => return Err(format!("SANDBOX_PREPARE_DEPS: `{v}` is not 1 or 0")),
            };
        }
        config.deps_dir = get("SANDBOX_DEPS_DIR").map(PathBuf::from);
        config.bwrap = get("SANDBOX_BWRAP").map(PathBuf::from);
        config.npm_cache = get("SANDBOX_NPM_CACHE").map(PathBuf::from);
        if let Some(v) = get("SANDBOX_JAIL_UID") {
            let uid = parse_positive("SANDBOX_JAIL_UID", &v)?;
            config.jail_uid = u32::try_from(uid)
                .ok()
                .filter(|u| *u < u32::MAX)
                .ok_or_else(|| format!("SANDBOX_JAIL_UID: `{v}` is not a uid"))?;
        }
        let limits = &mut config.limits;
        for (var, field) in [
            ("SANDBOX_MEMORY_BYTES", &mut limits.memory_bytes),
            ("SANDBOX_MAX_PROCESSES", &mut limits.processes),
            ("SANDBOX_FILE_SIZE_BYTES", &mut limits.file_size_bytes),
            ("SANDBOX_DISK_BYTES", &mut limits.disk_bytes),
            ("SANDBOX_TMP_BYTES", &mut limits.tmp_bytes),
        ] {
            if let Some(v) = get(var) {
                *field = parse_positive(var, &v)?;
            }
        }
        Ok(config)
    }
}

fn parse_positive(name: &str, v: &str) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}: `{v}` is not a positive integer")),
    }
}

/// Parses `LO-HI` (inclusive). Port 0 and reversed ranges are refused.
pub fn parse_port_range(v: &str) -> Result<RangeInclusive<u16>, String> {
    let err = || format!("SANDBOX_PORT_RANGE: `{v}` is not a range like 20000-20999");
    let (lo, hi) = v.trim().split_once('-').ok_or_else(err)?;
    let lo: u16 = lo.trim().parse().map_err(|_| err())?;
    let hi: u16 = hi.trim().parse().map_err(|_| err())?;
    if lo == 0 || hi < lo {
        return Err(err());
    }
    Ok(lo..=hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn secret_is_required() {
        let err = Config::from_env_and_args(env(&[]), Vec::new()).unwrap_err();
        assert!(err.contains("SANDBOX_SECRET"));
    }

    #[test]
    fn defaults_and_env() {
        let c = Config::from_env_and_args(env(&[("SANDBOX_SECRET", "s")]), Vec::new()).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.root, PathBuf::from("/workspace"));
        assert_eq!(c.templates_dir, PathBuf::from("/templates"));
        assert_eq!(c.command_timeout, Duration::from_secs(60));
        assert_eq!(c.output_cap, 1 << 20);

        let c = Config::from_env_and_args(
            env(&[
                ("SANDBOX_SECRET", "s"),
                ("SANDBOX_PORT_RANGE", "5000-5010"),
                ("SANDBOX_COMMAND_TIMEOUT_MS", "1500"),
                ("SANDBOX_ROOT", "/tmp/ws"),
            ]),
            vec![
                "--root".into(),
                "/tmp/other".into(),
                "--listen=127.0.0.1:9".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.port_range, 5000..=5010);
        assert_eq!(c.command_timeout, Duration::from_millis(1500));
        assert_eq!(
            c.root,
            PathBuf::from("/tmp/other"),
            "flags win over the environment"
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:9");
    }

    #[test]
    fn jail_settings() {
        let c = Config::from_env_and_args(env(&[("SANDBOX_SECRET", "s")]), Vec::new()).unwrap();
        assert!(!c.unconfined, "confined unless told otherwise");
        assert_eq!((c.jail_uid, c.bwrap.clone()), (100_000, None));
        assert_eq!(c.limits, Limits::default());
        let c = Config::from_env_and_args(
            env(&[
                ("SANDBOX_SECRET", "s"),
                ("SANDBOX_UNCONFINED", "1"),
                ("SANDBOX_MAX_PROCESSES", "64"),
                ("SANDBOX_DISK_BYTES", "1000"),
                ("SANDBOX_NPM_CACHE", "/c"),
            ]),
            vec!["--jail-uid=200000".into()],
        )
        .unwrap();
        assert!(c.unconfined);
        assert_eq!((c.limits.processes, c.limits.disk_bytes), (64, 1000));
        assert_eq!(c.jail_uid, 200_000);
        assert_eq!(c.npm_cache, Some(PathBuf::from("/c")));
        for (k, v) in [
            ("SANDBOX_UNCONFINED", "yes"),
            ("SANDBOX_MAX_PROCESSES", "0"),
            ("SANDBOX_JAIL_UID", "99999999999"),
        ] {
            let pairs = [("SANDBOX_SECRET", "s"), (k, v)];
            assert!(
                Config::from_env_and_args(env(&pairs), Vec::new()).is_err(),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (k, v) in [
            ("SANDBOX_PORT_RANGE", "9-1"),
            ("SANDBOX_PORT_RANGE", "0-10"),
            ("SANDBOX_PORT_RANGE", "abc"),
            ("SANDBOX_COMMAND_TIMEOUT_MS", "0"),
            ("SANDBOX_LISTEN", "nope"),
        ] {
            let pairs = [("SANDBOX_SECRET", "s"), (k, v)];
            assert!(
                Config::from_env_and_args(env(&pairs), Vec::new()).is_err(),
                "{k}={v}"
            );
        }
        assert!(
            Config::from_env_and_args(env(&[("SANDBOX_SECRET", "s")]), vec!["--bogus".into()])
                .is_err()
        );
        assert!(
            Config::from_env_and_args(env(&[("SANDBOX_SECRET", "s")]), vec!["--root".into()])
                .is_err()
        );
    }
}
