//! Inline claims, on any [`IdempotencyStore`]: what each copy of an event
//! is answered while it is new, held, done or released; leases that run
//! out; stale holders; done marks that expire.

use std::collections::HashMap;
use std::time::Duration;

use tower_webhook::{Claim, EventId, IdempotencyKey, IdempotencyStore, Tenant};

use crate::{Backend, LONG, SHORT, eventually, key, past_short};

macro_rules! cases {
    ($backend:ty) => {
        crate::tests!($backend, claims: [
            a_completed_claim_makes_every_copy_a_duplicate,
            a_released_claim_makes_the_key_new_again,
            concurrent_claims_of_one_key_make_one_claim,
            a_lease_that_ran_out_is_taken_over,
            a_stale_holder_cannot_complete_or_release_the_newer_claim,
            an_abandoned_claim_frees_its_key,
            abandoned_released_waits_for_every_abandoned_release,
            done_marks_expire_after_their_ttl,
            schemes_and_tenants_are_separate_namespaces,
            a_renewed_claim_outlives_its_first_lease,
            a_stale_holders_renew_answers_false_and_changes_nothing,
            renew_after_complete_or_release_answers_false,
        ]);
    };
}
pub(crate) use cases;

/// What a claim of `key` answers, by name.
async fn answer<S: IdempotencyStore>(store: &S, key: &IdempotencyKey) -> &'static str {
    match store.claim(key, LONG).await.unwrap() {
        Claim::New(_) => "new",
        Claim::Done => "done",
        Claim::InFlight => "in flight",
    }
}

/// Claims `key`, which must be new, for `lease`.
pub async fn new_claim<S: IdempotencyStore>(
    store: &S,
    key: &IdempotencyKey,
    lease: Duration,
) -> S::Lease {
    match store.claim(key, lease).await.unwrap() {
        Claim::New(lease) => lease,
        Claim::Done => panic!("{key}: expected a new claim, got done"),
        Claim::InFlight => panic!("{key}: expected a new claim, got in flight"),
    }
}

/// A claim of `id` whose [`SHORT`] lease ran out, and the newer claim that
/// took the key over.
async fn stale_and_newer<S: IdempotencyStore>(store: &S, id: &str) -> (S::Lease, S::Lease) {
    let stale = new_claim(store, &key(id), SHORT).await;
    past_short().await;
    let newer = new_claim(store, &key(id), LONG).await;
    (stale, newer)
}

/// New, then in flight to a copy while held; done to every copy once
/// completed.
pub async fn a_completed_claim_makes_every_copy_a_duplicate<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_done");
    let lease = new_claim(&store, &k, LONG).await;
    assert_eq!(answer(&store, &k).await, "in flight");
    store.complete(lease, LONG).await.unwrap();
    assert_eq!(answer(&store, &k).await, "done");
    assert_eq!(answer(&store, &k).await, "done");
    // Another handle on the same data sees the same.
    assert_eq!(answer(&backend.store().await, &k).await, "done");
}

/// Released (the handler failed), the key is new to the sender's retry.
pub async fn a_released_claim_makes_the_key_new_again<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_released");
    let lease = new_claim(&store, &k, LONG).await;
    store.release(lease).await.unwrap();
    let lease = new_claim(&store, &k, LONG).await;
    assert_eq!(answer(&store, &k).await, "in flight");
    store.complete(lease, LONG).await.unwrap();
    assert_eq!(answer(&store, &k).await, "done");
}

/// 100 concurrent claims of one free key: one is new, 99 are in flight.
pub async fn concurrent_claims_of_one_key_make_one_claim<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { answer(&store, &key("evt_race")).await })
        })
        .collect();
    let mut answers: HashMap<&str, usize> = HashMap::new();
    for task in tasks {
        *answers.entry(task.await.unwrap()).or_default() += 1;
    }
    assert_eq!(answers.get("new"), Some(&1), "{answers:?}");
    assert_eq!(answers.get("in flight"), Some(&99), "{answers:?}");
}

/// A holder that died leaves its claim in flight until the lease runs
/// out; then the next copy claims the key anew.
pub async fn a_lease_that_ran_out_is_taken_over<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_crashed");
    let _crashed = new_claim(&store, &k, SHORT).await;
    assert_eq!(answer(&store, &k).await, "in flight");
    past_short().await;
    let lease = new_claim(&store, &k, LONG).await;
    store.complete(lease, LONG).await.unwrap();
    assert_eq!(answer(&store, &k).await, "done");
}

/// A holder whose lease ran out and whose key was claimed anew can neither
/// mark it done, release it, abandon it, nor undo its done mark.
pub async fn a_stale_holder_cannot_complete_or_release_the_newer_claim<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;

    let (stale, newer) = stale_and_newer(&store, "evt_stale_complete").await;
    store.complete(stale, LONG).await.unwrap();
    assert_eq!(
        answer(&store, &key("evt_stale_complete")).await,
        "in flight",
        "the stale holder marked the newer claim done"
    );
    store.complete(newer, LONG).await.unwrap();
    assert_eq!(answer(&store, &key("evt_stale_complete")).await, "done");

    let (stale, newer) = stale_and_newer(&store, "evt_stale_release").await;
    store.release(stale).await.unwrap();
    assert_eq!(
        answer(&store, &key("evt_stale_release")).await,
        "in flight",
        "the stale holder freed the newer claim"
    );
    store.release(newer).await.unwrap();
    new_claim(&store, &key("evt_stale_release"), LONG).await;

    let (stale, _newer) = stale_and_newer(&store, "evt_stale_abandoned").await;
    store.release_abandoned(stale);
    // An abandoned release runs in the background: give it time to land.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        answer(&store, &key("evt_stale_abandoned")).await,
        "in flight"
    );

    let (stale, newer) = stale_and_newer(&store, "evt_stale_after_done").await;
    store.complete(newer, LONG).await.unwrap();
    store.release(stale).await.unwrap();
    assert_eq!(
        answer(&store, &key("evt_stale_after_done")).await,
        "done",
        "the stale holder undid the done mark"
    );
}

/// A claim whose request was abandoned (client gone, panic) is released
/// without anyone waiting for it: the key is new again soon after.
pub async fn an_abandoned_claim_frees_its_key<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_abandoned");
    let lease = new_claim(&store, &k, LONG).await;
    store.release_abandoned(lease);
    eventually("the abandoned claim to be released", || async {
        match store.claim(&k, LONG).await.unwrap() {
            Claim::New(_) => true,
            Claim::InFlight => false,
            Claim::Done => panic!("an abandoned claim is not done"),
        }
    })
    .await;
    assert_eq!(answer(&store, &k).await, "in flight");
}

/// Once `abandoned_released` resolves, every claim abandoned before it was
/// called is free: the next claim of each, on another handle, is new (what
/// a server awaits before it exits).
pub async fn abandoned_released_waits_for_every_abandoned_release<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let other = backend.store().await;
    let keys: Vec<_> = (0..20)
        .map(|n| key(&format!("evt_abandoned_{n}")))
        .collect();
    for k in &keys {
        let lease = new_claim(&store, k, LONG).await;
        store.release_abandoned(lease);
    }
    store.abandoned_released().await;
    for k in &keys {
        assert_eq!(answer(&other, k).await, "new", "{k}");
    }
}

/// A done mark answers duplicate for its TTL, then the key is new.
pub async fn done_marks_expire_after_their_ttl<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_ttl");
    let lease = new_claim(&store, &k, LONG).await;
    store.complete(lease, SHORT).await.unwrap();
    assert_eq!(answer(&store, &k).await, "done");
    past_short().await;
    new_claim(&store, &k, LONG).await;
}

/// One event id under two schemes, or two tenants, is two keys.
pub async fn schemes_and_tenants_are_separate_namespaces<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let id = EventId::new("evt_shared_id").unwrap();
    let lease = new_claim(&store, &key("evt_shared_id"), LONG).await;
    store.complete(lease, LONG).await.unwrap();
    let other_scheme = IdempotencyKey::new("numberotp", &id);
    new_claim(&store, &other_scheme, LONG).await;
    let tenant_a = IdempotencyKey::new("numero", &id).with_tenant(Tenant::new("a").unwrap());
    let tenant_b = IdempotencyKey::new("numero", &id).with_tenant(Tenant::new("b").unwrap());
    let lease = new_claim(&store, &tenant_a, LONG).await;
    store.complete(lease, LONG).await.unwrap();
    assert_eq!(answer(&store, &tenant_a).await, "done");
    new_claim(&store, &tenant_b, LONG).await;
    assert_eq!(answer(&store, &key("evt_shared_id")).await, "done");
}

/// A claim renewed while it holds its key keeps the key past the end of
/// its first lease, and can still complete it.
pub async fn a_renewed_claim_outlives_its_first_lease<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let k = key("evt_renewed");
    let lease = new_claim(&store, &k, SHORT).await;
    assert!(store.renew_claim(&lease, LONG).await.unwrap());
    past_short().await;
    assert_eq!(
        answer(&store, &k).await,
        "in flight",
        "the renewed lease holds"
    );
    store.complete(lease, LONG).await.unwrap();
    assert_eq!(answer(&store, &k).await, "done");
}

/// A holder whose lease ran out and whose key another claim took cannot
/// renew: `false`, and the newer claim is untouched.
pub async fn a_stale_holders_renew_answers_false_and_changes_nothing<B: Backend>() {
    let backend = B::open().await;
    let store = backend.store().await;
    let (stale, newer) = stale_and_newer(&store, "evt_stale_renew").await;
    assert!(!store.renew_claim(&stale, LONG).await.unwrap());
    assert_eq!(answer(&store, &key("evt_stale_renew")).await, "in flight");
    assert!(
        store.renew_claim(&newer, LONG).await.unwrap(),
        "the newer holds"
    );
    store.release(newer).await.unwrap();
    assert!(!store.renew_claim(&stale, LONG).await.unwrap(), "nor after");
    assert_eq!(answer(&store, &key("evt_stale_renew")).await, "new");
}

/// A completed or released claim holds nothing left to renew: `false`, and
/// the done mark or the free key stays as it was.
pub async fn renew_after_complete_or_release_answers_false<B: Backend>()
where
    <B::Store as IdempotencyStore>::Lease: Clone,
{
    let backend = B::open().await;
    let store = backend.store().await;
    let done = key("evt_renew_done");
    let lease = new_claim(&store, &done, LONG).await;
    store.complete(lease.clone(), LONG).await.unwrap();
    assert!(!store.renew_claim(&lease, LONG).await.unwrap());
    assert_eq!(answer(&store, &done).await, "done");

    let released = key("evt_renew_released");
    let lease = new_claim(&store, &released, LONG).await;
    store.release(lease.clone()).await.unwrap();
    assert!(!store.renew_claim(&lease, LONG).await.unwrap());
    assert_eq!(answer(&store, &released).await, "new");
}
