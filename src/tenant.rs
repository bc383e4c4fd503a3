//! Per-tenant secrets, replaced while the server runs.
//!
//! A platform that receives webhooks on behalf of its customers has one
//! secret (or a rotation set) per customer. [`WebhookLayerBuilder::tenants`](crate::WebhookLayerBuilder::tenants)
//! makes the layer take the tenant from each request ([`TenantFrom`]: a
//! header, the host, a path segment, or any function of the request head)
//! and verify the delivery with that tenant's secrets, looked up in a
//! [`TenantSecrets`] map.
//!
//! * The lookup takes no lock: the map sits behind an
//!   [`arc_swap::ArcSwap`], read with one atomic load.
//! * Secrets are keyed (decoded by the scheme, HMAC state precomputed)
//!   when the map is [replaced](TenantSecrets::replace) or a tenant
//!   [inserted](TenantSecrets::insert), never per request. A bad secret is
//!   an error from that call, and the map in use stays as it was.
//! * A request whose tenant is absent or not in the map is answered
//!   `404 {"error":"unknown_tenant"}` ([`LayerAnswer::UnknownTenant`](crate::LayerAnswer::UnknownTenant)) from
//!   its headers alone: the body is not read, nothing is recorded.
//! * Idempotency keys carry the tenant ([`IdempotencyKey::tenant`](crate::IdempotencyKey::tenant)), so two
//!   tenants' equal event ids are two events.
//! * The handler finds the [`Tenant`] in the request extensions (with axum:
//!   `Extension<Tenant>`), next to [`Verified`](crate::Verified). In queued
//!   mode the worker reads it again from the recorded request head, so a
//!   [`TenantFrom::with`] function that reads extensions set by earlier
//!   layers finds none there, and the handler then gets no `Tenant`.
//!
//! # Tenant ids
//!
//! 1 to [`MAX_TENANT_LEN`] characters of `A-Z`, `a-z`, `0-9`, `-`, `_` and
//! `.`, checked when the map is built. Hence no `/` and no `:`, which is
//! what keeps the key text `<scheme>/<tenant>:<id>` unambiguous (see
//! [`IdempotencyKey::as_str`](crate::IdempotencyKey::as_str)), and a tenant id needs no escaping in a
//! header, a host name or a path. Lookup is exact (case-sensitive).
//!
//! # Example
//!
//! ```
//! use axum::{Extension, Router, routing::post};
//! use http::StatusCode;
//! use tower_webhook::numero::{Numero, NumeroEvent};
//! use tower_webhook::{Tenant, TenantFrom, TenantSecrets, VerifiedEvent, WebhookLayer};
//!
//! async fn on_numero(
//!     Extension(tenant): Extension<Tenant>,
//!     VerifiedEvent(event): VerifiedEvent<NumeroEvent>,
//! ) -> StatusCode {
//!     println!("{tenant}: {}", event.id);
//!     StatusCode::OK
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Keyed with Numero's secret decoding, now.
//! let tenants = TenantSecrets::new(Numero);
//! tenants.replace([
//!     ("acme", vec!["whsec_acme_secret_0123456789"]),
//!     ("globex", vec!["whsec_globex_old_0123456789", "whsec_globex_new_0123456789"]),
//! ])?;
//!
//! // `/webhooks/{tenant}/numero`: the tenant is path segment 1.
//! let layer = WebhookLayer::builder(Numero)
//!     .tenants(TenantFrom::path_segment(1), tenants.clone())
//!     .build()?;
//! let app: Router = Router::new().route(
//!     "/webhooks/{tenant}/numero",
//!     post(on_numero).route_layer(layer),
//! );
//!
//! // Later, while serving: a rotation, without rebuilding anything.
//! tenants.insert("acme", ["whsec_acme_rotated_0123456789"])?;
//! // A bad secret is refused; the map in use is unchanged.
//! assert!(tenants.insert("acme", [" whsec_stray_space"]).is_err());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderName;
use http::request::Parts;

use crate::Scheme;
use crate::secret::{Key, SecretError, SecretSet, key_secrets};

/// Longest tenant id accepted, in bytes.
pub const MAX_TENANT_LEN: usize = 64;

/// A tenant's id, as the map holds it and the handler sees it.
///
/// Cheap to clone (one `Arc`). The layer inserts it into the request
/// extensions of every delivery it verified with a tenant's secrets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// Checks `id` against the rules in the [module docs](self).
    ///
    /// # Errors
    ///
    /// [`TenantError::InvalidTenant`] when it breaks them.
    pub fn new(id: &str) -> Result<Self, TenantError> {
        match broken_rule(id) {
            Some(reason) => Err(TenantError::InvalidTenant {
                tenant: id.chars().take(MAX_TENANT_LEN).collect(),
                reason,
            }),
            None => Ok(Self(Arc::from(id))),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which rule of the [module docs](self) `id` breaks, in a few words;
/// `None` when it is a tenant id.
pub(crate) fn broken_rule(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id.len() > MAX_TENANT_LEN {
        Some("is longer than 64 bytes")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("holds a character other than A-Z, a-z, 0-9, '-', '_' or '.'")
    } else {
        None
    }
}

impl Borrow<str> for Tenant {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A replacement of the tenant map that was refused; the map in use is
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantError {
    /// The tenant id breaks the rules in the [module docs](self).
    InvalidTenant {
        /// The id (cut at [`MAX_TENANT_LEN`] characters).
        tenant: String,
        /// Which rule, in a few words.
        reason: &'static str,
    },
    /// The same tenant appears twice in one replacement.
    DuplicateTenant {
        /// The tenant.
        tenant: String,
    },
    /// A secret of this tenant cannot be used.
    Secret {
        /// The tenant.
        tenant: String,
        /// What is wrong with the secret (its index is within the tenant's
        /// secrets).
        error: SecretError,
    },
}

impl fmt::Display for TenantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidTenant { tenant, reason } => {
                write!(f, "tenant id {tenant:?} {reason}")
            }
            Self::DuplicateTenant { tenant } => {
                write!(f, "tenant {tenant:?} is given more than once")
            }
            Self::Secret { tenant, error } => write!(f, "tenant {tenant:?}: {error}"),
        }
    }
}

impl std::error::Error for TenantError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Secret { error, .. } => Some(error),
            _ => None,
        }
    }
}

type Extract = dyn for<'a> Fn(&'a Parts) -> Option<&'a str> + Send + Sync;

/// Where the layer finds the tenant of a request: read from the request
/// head only, before the body.
///
/// An absent value (no such header, a path too short) is an unknown
/// tenant.
#[derive(Clone)]
pub struct TenantFrom {
    extract: Arc<Extract>,
    what: &'static str,
}

impl TenantFrom {
    /// The value of header `name`. Sent more than once, or not visible
    /// ASCII: no tenant.
    pub fn header(name: HeaderName) -> Self {
        Self {
            extract: Arc::new(move |parts: &Parts| {
                let mut values = parts.headers.get_all(&name).iter();
                let value = values.next()?;
                if values.next().is_some() {
                    return None;
                }
                value.to_str().ok()
            }),
            what: "header",
        }
    }

    /// The host the request was sent to, without its port: the URI's
    /// authority (HTTP/2, absolute-form requests), else the `Host` header.
    /// Compared as sent, so register lower-case host names.
    pub fn host() -> Self {
        Self {
            extract: Arc::new(|parts: &Parts| {
                let host = match parts.uri.host() {
                    Some(host) => host,
                    None => parts.headers.get(http::header::HOST)?.to_str().ok()?,
                };
                Some(match host.rsplit_once(':') {
                    Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                    _ => host,
                })
            }),
            what: "host",
        }
    }

    /// Path segment `index`, counted from 0 after the leading `/`, as sent
    /// (not percent-decoded: tenant ids need no escaping).
    ///
    /// For an axum route `/webhooks/{tenant}/numero` the tenant is segment
    /// 1 (`webhooks` is 0). axum's own path parameters are private to axum,
    /// so the layer counts segments itself, in the path the layer sees:
    /// under `Router::nest("/api", …)` the prefix is stripped before the
    /// layer runs, so count from after it.
    pub fn path_segment(index: usize) -> Self {
        Self {
            extract: Arc::new(move |parts: &Parts| {
                let path = parts.uri.path();
                let path = path.strip_prefix('/').unwrap_or(path);
                path.split('/').nth(index).filter(|s| !s.is_empty())
            }),
            what: "path segment",
        }
    }

    /// Any function of the request head (method, URI, headers, extensions
    /// set by earlier layers) returning the tenant id, borrowed from it.
    pub fn with<F>(extract: F) -> Self
    where
        F: for<'a> Fn(&'a Parts) -> Option<&'a str> + Send + Sync + 'static,
    {
        Self {
            extract: Arc::new(extract),
            what: "function",
        }
    }

    /// The tenant id this request names, if any.
    pub(crate) fn tenant_of<'a>(&self, parts: &'a Parts) -> Option<&'a str> {
        (self.extract)(parts)
    }
}

impl fmt::Debug for TenantFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TenantFrom").field(&self.what).finish()
    }
}

/// One tenant's keyed secrets, shared by the requests that use them.
pub(crate) struct TenantEntry {
    pub(crate) tenant: Tenant,
    pub(crate) secrets: SecretSet,
}

type Map = HashMap<Tenant, Arc<TenantEntry>>;
type Keying = dyn Fn(&str) -> Result<Key, &'static str> + Send + Sync;

/// The tenant map: tenant id → that tenant's secrets, keyed with one
/// scheme's secret decoding, replaceable at runtime.
///
/// Clones share one map: keep a clone to [`replace`](Self::replace) it
/// after handing one to [`WebhookLayerBuilder::tenants`](crate::WebhookLayerBuilder::tenants). Requests read it
/// without a lock; a replacement takes effect for requests that arrive
/// after it returns (a request already reading its body keeps the secrets
/// it started with). `Debug` prints only how many tenants there are.
#[derive(Clone)]
pub struct TenantSecrets {
    map: Arc<ArcSwap<Map>>,
    keying: Arc<Keying>,
    scheme: &'static str,
    min_secret_len: usize,
}

impl TenantSecrets {
    /// An empty map whose secrets are decoded as `scheme` decodes them
    /// ([`Scheme::decode_key`]). The layer it is given to must be of the
    /// same scheme.
    pub fn new<Sc: Scheme>(scheme: Sc) -> Self {
        Self {
            map: Arc::new(ArcSwap::from_pointee(Map::new())),
            scheme: scheme.name(),
            min_secret_len: scheme.min_secret_len(),
            keying: Arc::new(move |secret: &str| scheme.decode_key(secret)),
        }
    }

    /// The name of the scheme the secrets are keyed for.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Replaces the whole map with `tenants`: each tenant id with its
    /// secrets (several during a rotation: any one verifies), all keyed
    /// now. Tenants left out are removed.
    ///
    /// # Errors
    ///
    /// [`TenantError`] for an invalid or repeated tenant id, or a secret the
    /// layer would refuse (empty, stray whitespace, too short, not decodable by the
    /// scheme, none at all); the map in use is then unchanged.
    pub fn replace<I, T, S, V>(&self, tenants: I) -> Result<(), TenantError>
    where
        I: IntoIterator<Item = (T, S)>,
        T: AsRef<str>,
        S: IntoIterator<Item = V>,
        V: AsRef<str>,
    {
        let mut map = Map::new();
        for (tenant, secrets) in tenants {
            let entry = self.entry(tenant.as_ref(), secrets)?;
            match map.entry(entry.tenant.clone()) {
                Entry::Occupied(_) => {
                    return Err(TenantError::DuplicateTenant {
                        tenant: entry.tenant.as_str().to_owned(),
                    });
                }
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(entry));
                }
            }
        }
        self.map.store(Arc::new(map));
        Ok(())
    }

    /// Adds `tenant`, or replaces its secrets, keying them now. Copies the
    /// map's index (one pointer per tenant), not the other tenants' keys.
    ///
    /// # Errors
    ///
    /// As [`replace`](Self::replace); the map in use is then unchanged.
    pub fn insert<S, V>(&self, tenant: &str, secrets: S) -> Result<(), TenantError>
    where
        S: IntoIterator<Item = V>,
        V: AsRef<str>,
    {
        let entry = Arc::new(self.entry(tenant, secrets)?);
        self.map.rcu(|map| {
            let mut map = Map::clone(map);
            map.insert(entry.tenant.clone(), Arc::clone(&entry));
            map
        });
        Ok(())
    }

    /// Removes `tenant`; its deliveries are then `unknown_tenant`. Says
    /// whether it was there.
    pub fn remove(&self, tenant: &str) -> bool {
        let mut removed = false;
        self.map.rcu(|map| {
            let mut map = Map::clone(map);
            removed = map.remove(tenant).is_some();
            map
        });
        removed
    }

    /// Whether `tenant` is in the map.
    pub fn contains(&self, tenant: &str) -> bool {
        self.map.load().contains_key(tenant)
    }

    /// How many tenants the map holds.
    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    /// Whether the map holds no tenant.
    pub fn is_empty(&self) -> bool {
        self.map.load().is_empty()
    }

    /// The request path: the tenant's entry, without a lock (one atomic
    /// load, one reference count).
    pub(crate) fn lookup(&self, tenant: &str) -> Option<Arc<TenantEntry>> {
        self.map.load().get(tenant).cloned()
    }

    fn entry<S, V>(&self, tenant: &str, secrets: S) -> Result<TenantEntry, TenantError>
    where
        S: IntoIterator<Item = V>,
        V: AsRef<str>,
    {
        let tenant = Tenant::new(tenant)?;
        let secrets = key_secrets(self.scheme, self.min_secret_len, &*self.keying, secrets)
            .map_err(|error| TenantError::Secret {
                tenant: tenant.as_str().to_owned(),
                error,
            })?;
        Ok(TenantEntry { tenant, secrets })
    }
}

impl fmt::Debug for TenantSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSecrets")
            .field("scheme", &self.scheme)
            .field("tenants", &self.len())
            .finish()
    }
}

/// The layer's tenant configuration: where the tenant is, and the map.
#[derive(Clone, Debug)]
pub(crate) struct Tenants {
    pub(crate) from: TenantFrom,
    pub(crate) secrets: TenantSecrets,
}

impl Tenants {
    /// The entry of the tenant `parts` names, if it is in the map.
    pub(crate) fn lookup(&self, parts: &Parts) -> Option<Arc<TenantEntry>> {
        self.secrets.lookup(self.from.tenant_of(parts)?)
    }

    /// Queued mode: the worker's request, rebuilt from the recorded head,
    /// gets its [`Tenant`] again, read as at intake (the map is not asked:
    /// the delivery was verified when it was accepted).
    pub(crate) fn mark<B>(&self, request: http::Request<B>) -> http::Request<B> {
        let (mut parts, body) = request.into_parts();
        if let Some(tenant) = self
            .from
            .tenant_of(&parts)
            .and_then(|t| Tenant::new(t).ok())
        {
            parts.extensions.insert(tenant);
        }
        http::Request::from_parts(parts, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numero::Numero;

    fn parts(uri: &str, headers: &[(&'static str, &str)]) -> Parts {
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert!(Tenant::new("acme-1_x.y").is_ok());
        assert!(Tenant::new(&"a".repeat(MAX_TENANT_LEN)).is_ok());
        for bad in [
            "",
            "a/b",
            "a:b",
            "a b",
            "é",
            &"a".repeat(MAX_TENANT_LEN + 1),
        ] {
            assert!(
                matches!(Tenant::new(bad), Err(TenantError::InvalidTenant { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tenant_sources_read_the_head() {
        let p = parts(
            "/webhooks/acme/numero",
            &[("x-tenant", "globex"), ("host", "initech.example:8080")],
        );
        let header = TenantFrom::header(HeaderName::from_static("x-tenant"));
        assert_eq!(header.tenant_of(&p), Some("globex"));
        assert_eq!(TenantFrom::host().tenant_of(&p), Some("initech.example"));
        assert_eq!(TenantFrom::path_segment(1).tenant_of(&p), Some("acme"));
        assert_eq!(TenantFrom::path_segment(5).tenant_of(&p), None);
        let with = TenantFrom::with(|parts| parts.uri.path().rsplit('/').next());
        assert_eq!(with.tenant_of(&p), Some("numero"));
        let twice = parts("/", &[("x-tenant", "a"), ("x-tenant", "b")]);
        assert_eq!(header.tenant_of(&twice), None);
    }

    #[test]
    fn a_bad_replacement_keeps_the_old_map() {
        let tenants = TenantSecrets::new(Numero);
        tenants
            .replace([("acme", ["whsec_acme_0123456789abcdef"])])
            .unwrap();
        let bad = tenants.replace([
            ("acme", ["whsec_acme_rotated_0123456789"]),
            ("globex", [" whsec_globex_0123456789abcdef"]),
        ]);
        assert!(matches!(bad, Err(TenantError::Secret { .. })), "{bad:?}");
        let twice = tenants.replace([
            ("acme", ["whsec_acme_rotated_0123456789"]),
            ("acme", ["whsec_acme_again_0123456789"]),
        ]);
        assert!(matches!(twice, Err(TenantError::DuplicateTenant { .. })));
        let none: [&str; 0] = [];
        assert!(tenants.insert("globex", none).is_err());
        assert!(tenants.contains("acme") && tenants.len() == 1);
        tenants
            .insert("globex", ["whsec_globex_0123456789abcdef"])
            .unwrap();
        assert_eq!(tenants.len(), 2);
        assert!(tenants.remove("acme"));
        assert!(!tenants.remove("acme"));
        assert!(!tenants.contains("acme") && tenants.contains("globex"));
    }
}
