//! What the crate knows of each built-in provider beyond its [`Scheme`]:
//! the settings a receiver builds it from, and what it shows of an event.
//! Each provider implements [`Builtin`] in its own file; the provider list
//! in `scheme.rs` hands every one to a [`BuiltinVisitor`]
//! ([`for_each_builtin`](super::for_each_builtin)).

use super::Scheme;
use crate::Text;

/// A provider built into the crate.
pub trait Builtin: Scheme + Sized {
    /// The setting (an environment variable, for the example receiver)
    /// holding the provider's secrets, named as its documentation names
    /// the secret.
    const SECRET_VAR: &'static str;

    /// A setting holding public keys beside [`Builtin::SECRET_VAR`]'s
    /// secrets, for a scheme that takes both (Standard Webhooks' `whpk_`
    /// keys); `None` for most.
    const PUBLIC_KEY_VAR: Option<&'static str> = None;

    /// The setting holding the public URL the provider signs (Twilio,
    /// Square); `None` for schemes that sign no URL.
    const URL_VAR: Option<&'static str> = None;

    /// The scheme with its default settings and, for a scheme that signs
    /// its URL, `url` (ignored by the others).
    fn from_settings(url: &str) -> Self;

    /// The event's id as the provider sent it (or the key, for a provider
    /// that signs no id), for listing events.
    fn shown_id(event: &Self::Event) -> Text;

    /// A few of the event's fields worth seeing in a log line; absent ones
    /// are left out.
    fn shown_fields(event: &Self::Event) -> Vec<(&'static str, String)>;
}

/// Is handed every built-in provider, in the list's order.
pub trait BuiltinVisitor {
    /// Called once per built-in provider `B`.
    fn visit<B: Builtin>(&mut self);
}

/// Keeps the fields that are present.
pub(crate) fn present<const N: usize>(
    fields: [(&'static str, Option<&str>); N],
) -> Vec<(&'static str, String)> {
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.to_owned())))
        .collect()
}

/// [`Builtin`] for a scheme whose event's shown id is the text field `$id`
/// and whose shown fields are optional text fields.
macro_rules! builtin {
    ($scheme:ty, $var:literal, $build:expr, $id:ident [$($field:ident),*]) => {
        impl $crate::scheme::Builtin for $scheme {
            const SECRET_VAR: &'static str = $var;

            fn from_settings(_url: &str) -> Self {
                $build
            }

            fn shown_id(event: &Self::Event) -> $crate::Text {
                event.$id.clone()
            }

            fn shown_fields(event: &Self::Event) -> Vec<(&'static str, String)> {
                $crate::scheme::builtin::present([$((stringify!($field), event.$field.as_deref())),*])
            }
        }
    };
}

pub(crate) use builtin;
