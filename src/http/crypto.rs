//! WebCrypto for the Worker: the password hash's PBKDF2 runs in the runtime's native code
//! (`crypto.subtle.deriveBits`), not in WebAssembly. A hash then costs about 30 ms instead of
//! about 240 ms, so a burst of sign-ins no longer holds the isolate for seconds (in `wrangler dev`
//! that stall made the dev proxy drop POSTs that arrived meanwhile, answering 503).

use crate::domain::password::Kdf;
use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, Pbkdf2Params, SubtleCrypto};

/// PBKDF2-HMAC-SHA256 through `crypto.subtle`.
pub struct WebCryptoKdf;

fn subtle() -> Result<SubtleCrypto, JsValue> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    Reflect::get(&crypto, &JsValue::from_str("subtle"))?.dyn_into::<SubtleCrypto>()
}

async fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<[u8; 32], JsValue> {
    let subtle = subtle()?;
    let raw = Uint8Array::from(password.as_bytes());
    let usages = js_sys::Array::of1(&JsValue::from_str("deriveBits"));
    let key: CryptoKey =
        JsFuture::from(subtle.import_key_with_str("raw", &raw.into(), "PBKDF2", false, &usages)?)
            .await?
            .dyn_into()?;
    let salt = Uint8Array::from(salt);
    let params = Pbkdf2Params::new(
        "PBKDF2",
        &JsValue::from_str("SHA-256"),
        iterations,
        &Object::from(salt),
    );
    let bits = JsFuture::from(subtle.derive_bits_with_object(&params, &key, 256)?).await?;
    let bytes = Uint8Array::new(&bits).to_vec();
    bytes
        .try_into()
        .map_err(|_| JsValue::from_str("PBKDF2 returned a key of the wrong length"))
}

impl Kdf for WebCryptoKdf {
    async fn derive(&self, password: &str, salt: &[u8], iterations: u32) -> Option<[u8; 32]> {
        match derive(password, salt, iterations).await {
            Ok(k) => Some(k),
            Err(e) => {
                worker::console_error!("password hashing failed: {e:?}");
                None
            }
        }
    }
}
