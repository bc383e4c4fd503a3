//! Secrets from the environment, or a demo secret printed at start.
//!
//! `VAR` holds one secret, or several separated by whitespace during a
//! rotation. `VAR_FILE` (the container convention: a mounted secret file)
//! holds one secret per line, exactly as written, spaces included; empty
//! lines are ignored. That is the way to configure a secret with spaces in
//! it, such as GitHub's documented sample secret.

use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::time::SystemTime;

/// The secrets in `var`, split on whitespace (several during a rotation);
/// or, when `var` is unset, a fresh demo secret, printed with a hint.
pub fn from_env(var: &str, scheme: &str, hint: &str) -> Result<Vec<String>, String> {
    let file_var = format!("{var}_FILE");
    match (std::env::var_os(var), std::env::var_os(&file_var)) {
        (Some(_), Some(_)) => {
            return Err(format!("both {var} and {file_var} are set: give one"));
        }
        (None, Some(path)) => return from_file(&file_var, std::path::Path::new(&path)),
        _ => {}
    }
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
                #[cfg(feature = "ed25519")]
                "discord" => demo_public_key(var),
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

/// The values of `var` split on whitespace, `None` when it is unset (no
/// demo value).
pub fn optional(var: &str) -> Result<Option<Vec<String>>, String> {
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => Err(format!("{var} is set but empty")),
        Ok(value) => Ok(Some(value.split_whitespace().map(str::to_owned).collect())),
        Err(VarError::NotUnicode(_)) => Err(format!("{var} is not valid UTF-8")),
        Err(VarError::NotPresent) => Ok(None),
    }
}

/// A demo Ed25519 key pair: prints the signing key (to sign test
/// deliveries with) and returns the public key in hex, the configured value.
#[cfg(feature = "ed25519")]
fn demo_public_key(var: &str) -> String {
    let seed: [u8; 32] = hex_pair(&demo_secret()["demo_".len()..]);
    println!(
        "{var}: demo Ed25519 signing key (seed, hex) for this run: {}",
        hex_string(&seed)
    );
    tower_webhook::sign::ed25519_public_key_hex(&seed)
}

/// 32 bytes from the 32 hex digits of `hex` (used twice: 128 random bits
/// widened to a seed, enough for a demo).
#[cfg(feature = "ed25519")]
fn hex_pair(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = (i % 16) * 2;
        *byte = u8::from_str_radix(&hex[at..at + 2], 16).unwrap_or(0);
    }
    out
}

#[cfg(feature = "ed25519")]
fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One secret per line of the file at `path`, exactly as written.
fn from_file(file_var: &str, path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{file_var}: cannot read {}: {e}", path.display()))?;
    let secrets: Vec<String> = text
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if secrets.is_empty() {
        return Err(format!("{file_var}: {} holds no secret", path.display()));
    }
    Ok(secrets)
}

/// A random secret for a demo run (not for production: use the provider's).
fn demo_secret() -> String {
    // Each RandomState carries fresh keys seeded from the OS, so hashing
    // anything with two of them gives 128 unguessable-enough bits, std only.
    let word = || RandomState::new().hash_one(SystemTime::now());
    format!("demo_{:016x}{:016x}", word(), word())
}
