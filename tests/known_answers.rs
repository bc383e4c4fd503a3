//! Known answers: RFC 4231's HMAC-SHA256 vectors through the verifier,
//! GitHub's published vector through both providers' header formats and the
//! whole layer, and every other provider's published or documented vectors
//! ([`providers`]).

#[path = "known_answers/providers.rs"]
mod providers;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _, service_fn};
use tower_webhook::github::GitHub;
use tower_webhook::numberotp::NumberOtp;
use tower_webhook::numero::Numero;
use tower_webhook::{LayerAnswer, Scheme, SecretError, SecretSet, Signature, Tag, WebhookLayer};

/// (key, data, HMAC-SHA256) from RFC 4231 §4.2–4.8, cases 1–4, 6 and 7.
fn rfc4231() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
    vec![
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            (1..=25).collect(),
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. \
              The key needs to be hashed before being used by the HMAC algorithm."
                .to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ]
}

#[test]
fn rfc4231_vectors_verify_and_a_flipped_bit_does_not() {
    for (key, data, expected) in rfc4231() {
        let set = SecretSet::from_keys([&key]).unwrap();
        let tag = Tag::from_hex(expected.as_bytes()).unwrap();
        assert_eq!(set.verify(&Signature::over_body(tag), &data), Ok(()));
        assert_eq!(tower_webhook::sign::tag(&key, &data), tag);

        let mut flipped: [u8; 32] = tag.as_bytes().try_into().unwrap();
        flipped[31] ^= 1;
        let flipped = Signature::over_body(Tag::from_bytes(flipped));
        assert!(set.verify(&flipped, &data).is_err());
    }
}

#[test]
fn rfc4231_case_5_truncated_tag_is_refused() {
    // Case 5's 128-bit truncated output: a valid prefix of the real tag, but
    // only 16 bytes, so it never reaches the comparison.
    let truncated = "a3b6167473100ee06e0c796c2955552b";
    assert!(Tag::from_hex(truncated.as_bytes()).is_err());

    let mut headers = HeaderMap::new();
    let value = format!("sha256={truncated}");
    headers.insert(
        "x-numberotp-signature",
        HeaderValue::from_str(&value).unwrap(),
    );
    assert_eq!(
        NumberOtp.signature(&headers).unwrap_err(),
        LayerAnswer::MalformedSignature
    );
}

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const GITHUB_BASE64: &str = "dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=";
/// The `X-Hub-Signature-256` GitHub's "Validating webhook deliveries" page
/// gives for the secret and body above.
const GITHUB_HEADER: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

#[test]
fn github_vector_through_both_header_formats() {
    assert_eq!(
        tower_webhook::numberotp::sign(GITHUB_SECRET.as_bytes(), GITHUB_BODY),
        format!("sha256={GITHUB_HEX}")
    );
    assert_eq!(
        tower_webhook::numero::sign(GITHUB_SECRET.as_bytes(), GITHUB_BODY),
        GITHUB_BASE64
    );
    let set = SecretSet::from_keys([GITHUB_SECRET]).unwrap();

    let mut h = HeaderMap::new();
    h.insert(
        "x-numberotp-signature",
        format!("sha256={GITHUB_HEX}").parse().unwrap(),
    );
    let sig = NumberOtp.signature(&h).unwrap();
    assert_eq!(set.verify(&sig, GITHUB_BODY), Ok(()));

    for value in [
        GITHUB_BASE64.to_owned(),
        GITHUB_HEX.to_owned(),
        GITHUB_HEX.to_uppercase(),
    ] {
        let mut h = HeaderMap::new();
        h.insert("x-webhook-signature", value.parse().unwrap());
        let sig = Numero.signature(&h).unwrap();
        assert_eq!(set.verify(&sig, GITHUB_BODY), Ok(()), "{value}");
    }
}

#[tokio::test]
async fn githubs_own_vector_verifies_with_its_spaced_secret() {
    // GitHub's documented sample secret holds spaces: interior whitespace is
    // part of a secret; only leading or trailing whitespace is refused.
    for stray in [
        " It's a Secret to Everybody",
        "It's a Secret to Everybody\n",
        "",
    ] {
        assert!(WebhookLayer::new(GitHub, stray).is_err(), "{stray:?}");
    }
    assert_eq!(
        WebhookLayer::new(GitHub, "It's a Secret to Everybody\n").unwrap_err(),
        SecretError::Whitespace { index: 0 }
    );
    let svc = WebhookLayer::new(GitHub, GITHUB_SECRET)
        .unwrap()
        .layer(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }));
    let send = |sig: &str| {
        Request::post("/")
            .header("x-hub-signature-256", sig)
            .body(Full::new(Bytes::from_static(GITHUB_BODY)))
            .unwrap()
    };
    // The documented header verifies; "Hello, World!" is then no JSON
    // event (400), which is past the signature check. A wrong tag is 401.
    let verified = svc.clone().oneshot(send(GITHUB_HEADER)).await.unwrap();
    assert_eq!(verified.status(), StatusCode::BAD_REQUEST);
    let forged = GITHUB_HEADER.replace("757107", "757108");
    let refused = svc.oneshot(send(&forged)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
