//! What only this backend can be asked: a row written by something else,
//! through a second connection on the real file.

use bytes::Bytes;

use super::SqliteStore;
use crate::store::admin::{JobState, QueueInspect};
use crate::store::queue::{Delivery, JobQueue, QueueAdmin, TakeRequest};
use crate::{EventId, IdempotencyKey, StoreErrorKind};

/// A key that does not parse fails every call that reads it back as
/// corrupt data, not as a store that is away.
#[tokio::test]
async fn a_stored_key_that_is_not_a_key_is_corrupt() {
    let dir =
        std::env::temp_dir().join(format!("tower-webhook-sqlite-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    let key = IdempotencyKey::new("numero", &EventId::new("evt_1").unwrap());
    let delivery = Delivery::decode("numero".into(), "evt_1".into(), b"POST /\n", Bytes::new());
    store.accept(&key, delivery.unwrap()).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE webhook_keys SET key = 'not a key'", [])
        .unwrap();

    let listed = store.jobs(JobState::Pending, 10).await.unwrap_err();
    assert_eq!(listed.kind(), StoreErrorKind::Corrupt, "{listed}");
    let request = TakeRequest::new(
        std::sync::Arc::from(vec![Box::from("numero")]),
        10,
        std::time::Duration::from_secs(60),
    );
    let taken = store.take(request).await.unwrap_err();
    assert_eq!(taken.kind(), StoreErrorKind::Corrupt, "{taken}");
    // The store still answers what needs no key.
    assert_eq!(store.counts().await.unwrap().pending, 1);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
