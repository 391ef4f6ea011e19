//! Prints the API's OpenAPI document (the one `GET /api/openapi.json` serves) without a Worker:
//! `cargo run -q --example openapi > openapi.json`. The web app's API types are generated from
//! it (`frontend/src/api/schema.d.ts`, see the Makefile's `api-types`).

fn main() {
    // The document's `info.version` is the crate's version here (the Worker adds its commit);
    // nothing generated from it depends on the version.
    let doc = byte_platform::domain::openapi::document(env!("CARGO_PKG_VERSION"));
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("the OpenAPI document does not serialize: {e}");
            std::process::exit(1);
        }
    }
}
