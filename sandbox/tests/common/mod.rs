//! Helpers shared by the sandbox agent's integration tests.

/// Host pids of live (not zombie) processes whose command line contains `marker` (jailed
/// processes have other pids inside their namespace, so tests find them by what they run);
/// shells and bwrap carrying it in `sh -c` are skipped.
pub fn host_pids_running(marker: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie && cmdline.contains(marker) && !cmdline.contains("sh -c") {
            pids.push(pid);
        }
    }
    pids
}
