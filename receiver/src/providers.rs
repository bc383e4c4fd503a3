//! The routes of the built-in providers, one per entry of the crate's
//! provider list ([`tower_webhook::for_each_builtin`]), each with the
//! settings its provider's documentation names ([`Builtin::SECRET_VAR`],
//! [`Builtin::PUBLIC_KEY_VAR`], [`Builtin::URL_VAR`]). Unset on a loopback
//! address, a demo secret (or, for Discord, a demo key pair) is printed at
//! start; unset on any other address, the route is not mounted (see
//! [`Unset`]).
//!
//! | route | settings |
//! |---|---|
//! | `/webhooks/numberotp` | `NUMBEROTP_WEBHOOK_SECRET` |
//! | `/webhooks/numero` | `NUMERO_WEBHOOK_SECRET` |
//! | `/webhooks/github` | `GITHUB_WEBHOOK_SECRET` |
//! | `/webhooks/standard` | `STANDARD_WEBHOOK_SECRET` and/or `STANDARD_WEBHOOK_PUBLIC_KEY` (`whpk_…`, feature `ed25519`) |
//! | `/webhooks/stripe` | `STRIPE_WEBHOOK_SECRET` |
//! | `/webhooks/shopify` | `SHOPIFY_WEBHOOK_SECRET` |
//! | `/webhooks/slack` | `SLACK_SIGNING_SECRET` |
//! | `/webhooks/paddle` | `PADDLE_WEBHOOK_SECRET` |
//! | `/webhooks/linear` | `LINEAR_WEBHOOK_SECRET` |
//! | `/webhooks/zoom` | `ZOOM_WEBHOOK_SECRET` |
//! | `/webhooks/twitch` | `TWITCH_WEBHOOK_SECRET` |
//! | `/webhooks/woocommerce` | `WOOCOMMERCE_WEBHOOK_SECRET` |
//! | `/webhooks/lemonsqueezy` | `LEMONSQUEEZY_WEBHOOK_SECRET` |
//! | `/webhooks/flutterwave` | `FLUTTERWAVE_WEBHOOK_SECRET` (v4 HMAC) |
//! | `/webhooks/paystack` | `PAYSTACK_SECRET_KEY` |
//! | `/webhooks/twilio` | `TWILIO_AUTH_TOKEN`, `TWILIO_WEBHOOK_URL` (default: this route's local URL) |
//! | `/webhooks/square` | `SQUARE_WEBHOOK_SIGNATURE_KEY`, `SQUARE_NOTIFICATION_URL` (default: this route's local URL) |
//! | `/webhooks/discord` | `DISCORD_PUBLIC_KEY` (hex) |

use axum::Router;
use tower_webhook::{Builtin, BuiltinVisitor};

use crate::routes::{self, AppState, LayerSettings};
use crate::secrets::{self, Unset};
use crate::wiring::Wiring;

/// Mounts every built-in provider's route on `app`, in the list's order.
pub fn mount_all<W: Wiring>(
    app: Router<AppState>,
    unset: Unset,
    wiring: &W,
    settings: &LayerSettings,
    base_url: &str,
) -> Result<Router<AppState>, String> {
    let mut mounter = Mounter {
        app: Some(app),
        error: None,
        unset,
        wiring,
        settings,
        base_url,
    };
    tower_webhook::for_each_builtin(&mut mounter);
    match mounter.error {
        Some(error) => Err(error),
        None => Ok(mounter.app.expect("an app unless an error")),
    }
}

/// Mounts each provider it visits; stops at the first error.
struct Mounter<'a, W> {
    app: Option<Router<AppState>>,
    error: Option<String>,
    unset: Unset,
    wiring: &'a W,
    settings: &'a LayerSettings,
    base_url: &'a str,
}

impl<W: Wiring> BuiltinVisitor for Mounter<'_, W> {
    fn visit<B: Builtin>(&mut self) {
        let Some(app) = self.app.take() else {
            return;
        };
        match mount::<B, W>(app, self.unset, self.wiring, self.settings, self.base_url) {
            Ok(app) => self.app = Some(app),
            Err(error) => self.error = Some(error),
        }
    }
}

/// One provider's route, with its secrets (and public keys) from its
/// settings; not mounted when they are unset and `unset` says so.
fn mount<B: Builtin, W: Wiring>(
    app: Router<AppState>,
    unset: Unset,
    wiring: &W,
    settings: &LayerSettings,
    base_url: &str,
) -> Result<Router<AppState>, String> {
    let var = B::SECRET_VAR;
    let name = B::from_settings("").name();
    // The signing URL is asked for only where the route will be mounted.
    let url = match B::URL_VAR {
        Some(url_var) if unset == Unset::Demo || secrets::is_set(var) => {
            url_setting(url_var, &format!("{base_url}/webhooks/{name}"))?
        }
        _ => String::new(),
    };
    let hint = send_hint(name, base_url);
    let keys = match B::PUBLIC_KEY_VAR {
        None => secrets::from_env(var, name, &hint, unset)?,
        Some(public_var) => {
            let public_keys = secrets::optional(public_var)?;
            let secrets = match (&public_keys, secrets::optional(var)?) {
                (_, Some(secrets)) => Some(secrets),
                (Some(_), None) => Some(Vec::new()),
                (None, None) => secrets::from_env(var, name, &hint, unset)?,
            };
            secrets.map(|mut keys| {
                keys.extend(public_keys.unwrap_or_default());
                keys
            })
        }
    };
    let Some(keys) = keys else {
        not_mounted(name, var);
        return Ok(app);
    };
    match B::PUBLIC_KEY_VAR {
        Some(_) => println!(
            "POST /webhooks/{name}: {} secret(s) or public key(s)",
            keys.len()
        ),
        None => println!("POST /webhooks/{name}: {} secret(s)", keys.len()),
    }
    routes::mount(app, B::from_settings(&url), keys, wiring, settings)
}

/// The command that sends a sample delivery, for the providers the send
/// example speaks.
fn send_hint(name: &str, base_url: &str) -> String {
    match name {
        "numberotp" | "numero" => format!(
            "cargo run --release --example send -- {name} duplicate --url {base_url}/webhooks/{name}"
        ),
        _ => String::new(),
    }
}

/// Says why a route is missing.
fn not_mounted(name: &str, var: &str) {
    println!(
        "POST /webhooks/{name}: not mounted ({var} is not set, and demo secrets are \
         made only on a loopback address)"
    );
}

/// The public URL a provider signs, from `var`, else `default` (printed).
fn url_setting(var: &str, default: &str) -> Result<String, String> {
    match secrets::optional(var)? {
        Some(mut urls) if urls.len() == 1 => Ok(urls.remove(0)),
        Some(_) => Err(format!("{var} holds more than one URL")),
        None => {
            println!("{var} is not set; signing URL for this run: {default}");
            Ok(default.to_owned())
        }
    }
}
