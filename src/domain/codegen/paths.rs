//! Checks every path the model (or a user) names before anything is written under it: the
//! file blocks of the streaming format ([`super::files_format`]), the blueprint's file plan
//! ([`super::blueprint`]) and each phase plan ([`super::phase_plan`]).
//!
//! Invariants: the rules are [`byte_protocol::RelPath`]'s and nothing else, so what the model may
//! write here is exactly what the sandbox accepts; an accepted path comes back in its normal form
//! (callers store that, never the raw text); a refusal is a sentence the model can act on.

/// Path limits come from the one lexical rule set the Worker and byte-sandbox share.
pub use byte_protocol::path::{MAX_PATH_BYTES, MAX_PATH_DEPTH};

/// Checks a path the model (or a user) names and returns its normal form: relative,
/// `/`-separated, with `.` components and repeated slashes removed. The rules are
/// [`byte_protocol::RelPath`]'s, so what the model may write is exactly what the sandbox accepts.
///
/// The error is a sentence suitable for showing to the model so it can correct itself.
pub fn validate_path(raw: &str) -> Result<String, String> {
    byte_protocol::RelPath::parse(raw)
        .map(byte_protocol::RelPath::into_string)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules themselves are tested where they live (`byte_protocol::path`); here, that the
    /// model's paths go through them: normalised when good, refused with the reason when not.
    #[test]
    fn validate_path_delegates_to_the_shared_parser() {
        assert_eq!(
            validate_path("./src//App.tsx").as_deref(),
            Ok("src/App.tsx")
        );
        for (raw, why) in [
            ("../x", ".."),
            ("/etc/passwd", "absolute"),
            ("node_modules/a", "node_modules"),
        ] {
            assert!(validate_path(raw).unwrap_err().contains(why), "{raw}");
        }
        let deep = vec!["d"; MAX_PATH_DEPTH + 1].join("/");
        assert!(validate_path(&deep).unwrap_err().contains("deeper"));
    }
}
