//! What the receiver shows of each scheme's events: the id it lists in
//! `GET /events`, and a few fields for its log line. A new scheme is one
//! impl here and one `mount` line in `routes.rs`.

use tower_webhook::Text;
use tower_webhook::github::GitHubEvent;
use tower_webhook::numberotp::NumberOtpEvent;
use tower_webhook::numero::{NumeroData, NumeroEvent};
use tower_webhook::standard::StandardEvent;
use tower_webhook::stripe::StripeEvent;

/// A scheme's event as the receiver shows it.
pub trait Shown: Clone + Send + Sync + 'static {
    /// The event's id as the provider sent it.
    fn id(&self) -> Text;
    /// A few fields worth seeing in the log line; absent ones are left out.
    fn fields(&self) -> Vec<(&'static str, String)>;
}

/// Keeps the fields that are present.
fn present<const N: usize>(
    fields: [(&'static str, Option<&str>); N],
) -> Vec<(&'static str, String)> {
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.to_owned())))
        .collect()
}

impl Shown for NumberOtpEvent {
    fn id(&self) -> Text {
        self.id.clone()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([
            ("status", self.status.as_deref()),
            ("otp", self.otp.as_deref()),
            ("service", self.service.as_deref()),
        ])
    }
}

impl Shown for NumeroEvent {
    fn id(&self) -> Text {
        self.id.clone()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let transaction = match &self.data {
            NumeroData::Funding(t) | NumeroData::Transfer(t) | NumeroData::Payout(t) => Some(t),
            _ => None,
        };
        let amount = transaction
            .and_then(|t| t.amount.as_ref().or(t.trx_amount.as_ref()))
            .map(|amount| amount.as_str());
        present([
            ("event_type", self.event_type.as_deref()),
            ("amount", amount),
            ("currency", transaction.and_then(|t| t.currency.as_deref())),
        ])
    }
}

impl Shown for GitHubEvent {
    /// The body digest, which is the key: `X-GitHub-Delivery` is unsigned.
    fn id(&self) -> Text {
        self.digest.clone()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([
            ("event_type", self.event_type.as_deref()),
            ("delivery", self.delivery.as_deref()),
            ("action", self.action.as_deref()),
        ])
    }
}

impl Shown for StandardEvent {
    fn id(&self) -> Text {
        self.id.clone()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([("event_type", self.event_type.as_deref())])
    }
}

impl Shown for StripeEvent {
    fn id(&self) -> Text {
        self.id.clone()
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        present([("event_type", self.event_type.as_deref())])
    }
}

/// `Shown` for an event whose id is the field `$id` and whose shown fields
/// are optional text fields.
macro_rules! shown {
    ($($event:ty => $id:ident [$($field:ident),*];)*) => {
        $(impl Shown for $event {
            fn id(&self) -> Text {
                self.$id.clone()
            }

            fn fields(&self) -> Vec<(&'static str, String)> {
                present([$((stringify!($field), self.$field.as_deref())),*])
            }
        })*
    };
}

shown! {
    tower_webhook::shopify::ShopifyEvent => digest [topic, shop_domain];
    tower_webhook::slack::SlackEvent => id [event_type, inner_type, team_id];
    tower_webhook::paddle::PaddleEvent => event_id [event_type, notification_id];
    tower_webhook::linear::LinearEvent => digest [entity_type, action, data_id];
    tower_webhook::zoom::ZoomEvent => digest [event_type];
    tower_webhook::twitch::TwitchEvent => message_id [subscription_type];
    tower_webhook::woocommerce::WooCommerceEvent => digest [topic, resource_id];
    tower_webhook::lemonsqueezy::LemonSqueezyEvent => digest [event_name, data_id];
    tower_webhook::flutterwave::FlutterwaveEvent => digest [event_type, tx_ref];
    tower_webhook::paystack::PaystackEvent => digest [event_type, reference];
    tower_webhook::twilio::TwilioEvent => digest [sid, status];
    tower_webhook::square::SquareEvent => event_id [event_type, merchant_id];
}

shown! {
    tower_webhook::discord::DiscordEvent => id [application_id];
}
