//! The routes of the provider schemes, each with the setting names its
//! provider's documentation uses. Unset on a loopback address, a demo
//! secret (or, for Discord, a demo key pair) is printed at start; unset on
//! any other address, the route is not mounted (see [`Unset`]).
//!
//! | route | settings |
//! |---|---|
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
//! | `/webhooks/discord` | `DISCORD_PUBLIC_KEY` (hex; feature `ed25519`) |
//! | `/webhooks/standard` | `STANDARD_WEBHOOK_SECRET` and/or `STANDARD_WEBHOOK_PUBLIC_KEY` (`whpk_…`, feature `ed25519`) |

use axum::Router;
use tower_webhook::Scheme;
use tower_webhook::flutterwave::Flutterwave;
use tower_webhook::lemonsqueezy::LemonSqueezy;
use tower_webhook::linear::Linear;
use tower_webhook::paddle::Paddle;
use tower_webhook::paystack::Paystack;
use tower_webhook::shopify::Shopify;
use tower_webhook::slack::Slack;
use tower_webhook::square::Square;
use tower_webhook::standard::Standard;
use tower_webhook::twilio::Twilio;
use tower_webhook::twitch::Twitch;
use tower_webhook::woocommerce::WooCommerce;
use tower_webhook::zoom::Zoom;

use crate::routes::{self, AppState, LayerSettings};
use crate::secrets::{self, Unset};
use crate::shown::Shown;
use crate::wiring::Wiring;

/// One scheme's route, with its secrets from `var`; not mounted when
/// `var` is unset and `unset` says so.
pub fn mount_as<Sc, W>(
    app: Router<AppState>,
    scheme: Sc,
    var: &str,
    hint: &str,
    unset: Unset,
    wiring: &W,
    settings: &LayerSettings,
) -> Result<Router<AppState>, String>
where
    Sc: Scheme,
    Sc::Event: Shown,
    W: Wiring,
{
    let name = scheme.name();
    let Some(secrets) = secrets::from_env(var, name, hint, unset)? else {
        not_mounted(name, var);
        return Ok(app);
    };
    println!("POST /webhooks/{name}: {} secret(s)", secrets.len());
    routes::mount(app, scheme, secrets, wiring, settings)
}

/// Says why a route is missing.
fn not_mounted(name: &str, var: &str) {
    println!(
        "POST /webhooks/{name}: not mounted ({var} is not set, and demo secrets are \
         made only on a loopback address)"
    );
}

/// Standard Webhooks: `STANDARD_WEBHOOK_SECRET` (`whsec_…`) and/or
/// `STANDARD_WEBHOOK_PUBLIC_KEY` (`whpk_…`, `v1a`); with neither, a demo
/// secret, or no route, as `unset` says.
pub fn mount_standard<W: Wiring>(
    app: Router<AppState>,
    unset: Unset,
    wiring: &W,
    settings: &LayerSettings,
) -> Result<Router<AppState>, String> {
    const SECRET: &str = "STANDARD_WEBHOOK_SECRET";
    const PUBLIC_KEY: &str = "STANDARD_WEBHOOK_PUBLIC_KEY";
    let public_keys = secrets::optional(PUBLIC_KEY)?;
    let mut keys = match (&public_keys, secrets::optional(SECRET)?) {
        (_, Some(secrets)) => secrets,
        (Some(_), None) => Vec::new(),
        (None, None) => match secrets::from_env(SECRET, "standard", "", unset)? {
            Some(demo) => demo,
            None => {
                not_mounted("standard", SECRET);
                return Ok(app);
            }
        },
    };
    keys.extend(public_keys.unwrap_or_default());
    println!(
        "POST /webhooks/standard: {} secret(s) or public key(s)",
        keys.len()
    );
    routes::mount(app, Standard::new(), keys, wiring, settings)
}

/// Every provider route but Standard's and those `main.rs` mounts.
pub fn mount_all<W: Wiring>(
    app: Router<AppState>,
    unset: Unset,
    wiring: &W,
    settings: &LayerSettings,
    base_url: &str,
) -> Result<Router<AppState>, String> {
    let s = settings;
    let u = unset;
    let app = mount_as(app, Shopify, "SHOPIFY_WEBHOOK_SECRET", "", u, wiring, s)?;
    let app = mount_as(app, Slack::new(), "SLACK_SIGNING_SECRET", "", u, wiring, s)?;
    let app = mount_as(
        app,
        Paddle::new(),
        "PADDLE_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(
        app,
        Linear::new(),
        "LINEAR_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(app, Zoom::new(), "ZOOM_WEBHOOK_SECRET", "", u, wiring, s)?;
    let app = mount_as(
        app,
        Twitch::new(),
        "TWITCH_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(
        app,
        WooCommerce,
        "WOOCOMMERCE_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(
        app,
        LemonSqueezy,
        "LEMONSQUEEZY_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(
        app,
        Flutterwave::new(),
        "FLUTTERWAVE_WEBHOOK_SECRET",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(app, Paystack, "PAYSTACK_SECRET_KEY", "", u, wiring, s)?;
    // The signing URL is asked for only where the route will be mounted.
    let mounted = |var: &str| unset == Unset::Demo || secrets::is_set(var);
    let twilio_url = match mounted("TWILIO_AUTH_TOKEN") {
        true => url_setting("TWILIO_WEBHOOK_URL", &format!("{base_url}/webhooks/twilio"))?,
        false => String::new(),
    };
    let app = mount_as(
        app,
        Twilio::new(twilio_url),
        "TWILIO_AUTH_TOKEN",
        "",
        u,
        wiring,
        s,
    )?;
    let square_url = match mounted("SQUARE_WEBHOOK_SIGNATURE_KEY") {
        true => url_setting(
            "SQUARE_NOTIFICATION_URL",
            &format!("{base_url}/webhooks/square"),
        )?,
        false => String::new(),
    };
    let square = Square::new(square_url);
    let app = mount_as(
        app,
        square,
        "SQUARE_WEBHOOK_SIGNATURE_KEY",
        "",
        u,
        wiring,
        s,
    )?;
    let app = mount_as(
        app,
        tower_webhook::discord::Discord::new(),
        "DISCORD_PUBLIC_KEY",
        "",
        u,
        wiring,
        s,
    )?;
    Ok(app)
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
