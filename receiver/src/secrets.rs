//! Secrets from the environment, or, on a loopback address only, a demo
//! secret printed at start.
//!
//! `VAR` holds one secret: its whole value, spaces included (GitHub's
//! documented sample secret is `It's a Secret to Everybody`). `VAR_FILE`
//! (the container convention: a mounted secret file) holds one secret per
//! line, exactly as written; empty lines are ignored. That is the way to
//! give several during a rotation. A `VAR` that looks like a list is still
//! one secret, with a warning naming `VAR_FILE`: splitting it would make
//! each word (`a`, `to`) a secret of its own, which anyone can guess.
//!
//! No configured secret is ever printed.

use std::env::VarError;
use std::hash::{BuildHasher, RandomState};
use std::time::SystemTime;

/// What an unset secret variable means, decided by the listen address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unset {
    /// Loopback: make up a demo secret and print it (only local processes
    /// can send, and the log is theirs).
    Demo,
    /// Any other address: the route is not mounted, and nothing is printed
    /// that could sign for it.
    Unmounted,
}

impl Unset {
    /// [`Unset::Demo`] for a loopback address, else [`Unset::Unmounted`].
    pub fn for_address(addr: std::net::SocketAddr) -> Self {
        if addr.ip().is_loopback() {
            Self::Demo
        } else {
            Self::Unmounted
        }
    }
}

/// The secrets in `var` (one) or `var_FILE` (one per line); when neither
/// is set, with [`Unset::Demo`] a fresh demo secret, printed with a hint,
/// with [`Unset::Unmounted`] `None`.
pub fn from_env(
    var: &str,
    scheme: &str,
    hint: &str,
    unset: Unset,
) -> Result<Option<Vec<String>>, String> {
    if let Some(secrets) = optional(var)? {
        return Ok(Some(secrets));
    }
    if unset == Unset::Unmounted {
        return Ok(None);
    }
    let secret = match scheme {
        // Standard Webhooks secrets are `whsec_` + base64 of the key.
        "standard" => tower_webhook::standard::encode_secret(demo_secret().as_bytes()),
        "discord" => demo_public_key(var),
        _ => demo_secret(),
    };
    println!(
        "{var} is not set; demo secret for this run (a loopback-only demo: \
         anyone who reads this log can sign for it): {secret}"
    );
    if !hint.is_empty() {
        println!("  try: {var}={secret} {hint}");
    }
    Ok(Some(vec![secret]))
}

/// Whether `var` or `var_FILE` is set (to anything).
pub fn is_set(var: &str) -> bool {
    std::env::var_os(var).is_some() || std::env::var_os(format!("{var}_FILE")).is_some()
}

/// The value of `var`, whole, as one entry; or the lines of the file
/// `var_FILE` names; `None` when neither is set (no demo value).
pub fn optional(var: &str) -> Result<Option<Vec<String>>, String> {
    let file_var = format!("{var}_FILE");
    match (std::env::var_os(var), std::env::var_os(&file_var)) {
        (Some(_), Some(_)) => {
            return Err(format!("both {var} and {file_var} are set: give one"));
        }
        (None, Some(path)) => {
            return from_file(&file_var, std::path::Path::new(&path)).map(Some);
        }
        _ => {}
    }
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => Err(format!("{var} is set but empty")),
        Ok(value) => {
            if value.split_whitespace().nth(1).is_some() {
                // Named, never shown: the value is a secret.
                eprintln!(
                    "warning: {var} holds whitespace; it is taken whole, as one value. \
                     To give several secrets (a rotation), put one per line in the file \
                     {file_var} names instead"
                );
            }
            Ok(Some(vec![value]))
        }
        Err(VarError::NotUnicode(_)) => Err(format!("{var} is not valid UTF-8")),
        Err(VarError::NotPresent) => Ok(None),
    }
}

/// A demo Ed25519 key pair: prints the signing key (to sign test
/// deliveries with) and returns the public key in hex, the configured value.
fn demo_public_key(var: &str) -> String {
    let seed: [u8; 32] = hex_pair(&demo_secret()["demo_".len()..]);
    println!(
        "{var}: demo Ed25519 signing key (seed, hex) for this run (a loopback-only demo): {}",
        hex_string(&seed)
    );
    tower_webhook::sign::ed25519_public_key_hex(&seed)
}

/// 32 bytes from the 32 hex digits of `hex` (used twice: 128 random bits
/// widened to a seed, enough for a demo).
fn hex_pair(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let at = (i % 16) * 2;
        *byte = u8::from_str_radix(&hex[at..at + 2], 16).unwrap_or(0);
    }
    out
}

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

/// `url` fit for the log: a password in it (`redis://:pw@host/`) is a
/// configured secret, so the user-info part is shown as `***`.
pub fn url_for_log(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_for_log;

    #[test]
    fn a_password_in_a_url_is_not_logged() {
        assert_eq!(
            url_for_log("redis://:hunter2-long-password@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(url_for_log("rediss://u:p@db/"), "rediss://***@db/");
        assert_eq!(
            url_for_log("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
        assert_eq!(url_for_log("memory"), "memory");
    }
}
