//! Secrets from the environment, or a demo secret printed at start.

use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::time::SystemTime;

/// The secrets in `var`, split on whitespace (several during a rotation);
/// or, when `var` is unset, a fresh demo secret, printed with a hint.
pub fn from_env(var: &str, scheme: &str, hint: &str) -> Result<Vec<String>, String> {
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => Err(format!(
            "{var} is set but empty: give the {scheme} secret, or unset it for a demo secret"
        )),
        Ok(value) => Ok(value.split_whitespace().map(str::to_owned).collect()),
        Err(VarError::NotUnicode(_)) => Err(format!("{var} is not valid UTF-8")),
        Err(VarError::NotPresent) => {
            let secret = match scheme {
                // Standard Webhooks secrets are `whsec_` + base64 of the key.
                "standard" => tower_webhook::sign::standard_secret(demo_secret().as_bytes()),
                _ => demo_secret(),
            };
            println!("{var} is not set; demo secret for this run: {secret}");
            if !hint.is_empty() {
                println!("  try: {var}={secret} {hint}");
            }
            Ok(vec![secret])
        }
    }
}

/// A random secret for a demo run (not for production: use the provider's).
fn demo_secret() -> String {
    // Each RandomState carries fresh keys seeded from the OS, so hashing
    // anything with two of them gives 128 unguessable-enough bits, std only.
    let word = || RandomState::new().hash_one(SystemTime::now());
    format!("demo_{:016x}{:016x}", word(), word())
}
