//! `GET /metrics`: the layers' and the worker's metrics in the Prometheus
//! text format, from the recorder [`install`] puts in place at start
//! (metrics-exporter-prometheus, with buckets for both histograms).

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_webhook::metrics::{
    BODY_BYTES, BODY_BYTES_BUCKETS, HANDLER_DURATION_BUCKETS, HANDLER_DURATION_SECONDS,
};

/// How often the recorder drains its histogram samples into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder and
/// starts its upkeep. Call once, inside the runtime, before any layer sees a
/// delivery.
pub fn install() -> Result<(), String> {
    let failed = |e: metrics_exporter_prometheus::BuildError| format!("metrics: {e}");
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HANDLER_DURATION_SECONDS.into()),
            HANDLER_DURATION_BUCKETS,
        )
        .map_err(failed)?
        .set_buckets_for_metric(Matcher::Full(BODY_BYTES.into()), BODY_BYTES_BUCKETS)
        .map_err(failed)?
        .install_recorder()
        .map_err(failed)?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    HANDLE
        .set(handle)
        .map_err(|_| "metrics: installed twice".to_owned())
}

/// `GET /metrics`: every metric, in the Prometheus text format.
pub async fn render() -> Response {
    match HANDLE.get() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder").into_response(),
    }
}
