//! The wake-up of idle workers: one `LISTEN` connection per store, started
//! by the first `wait_for_work`, on the channel every accept and replay
//! notifies. A lost connection is opened again after a second; meanwhile,
//! and for notifications that arrive while no worker waits, the worker's
//! own polling (its idle poll and `next_due`) finds the work.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;

/// Listens on `channel` and wakes every waiter on each notification, until
/// the store (`wake`'s last strong owner) is gone.
pub(super) async fn listen(pool: PgPool, channel: String, wake: Weak<Notify>) {
    loop {
        if wake.strong_count() == 0 {
            return;
        }
        if let Ok(mut listener) = PgListener::connect_with(&pool).await
            && listener.listen(&channel).await.is_ok()
        {
            // Work accepted while the connection was away: look now.
            notify(&wake);
            loop {
                let received =
                    tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await;
                match received {
                    Ok(Ok(Some(_))) => {
                        if !notify(&wake) {
                            return;
                        }
                    }
                    Err(_) if wake.strong_count() > 0 => {}
                    Err(_) => return,
                    Ok(Ok(None) | Err(_)) => break,
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Wakes every waiter; `false` once the store is gone.
fn notify(wake: &Weak<Notify>) -> bool {
    match wake.upgrade() {
        Some(notify) => {
            notify.notify_waiters();
            true
        }
        None => false,
    }
}

/// Keeps the notifier alive for waiters.
pub(super) type Wake = Arc<Notify>;
