//! Starting without an upstream: a bootstrap file evaluates at once,
//! nothing at all gives defaults at once (`PROVIDER_NOT_READY`), and no
//! getter ever waits on the network.

use std::time::{Duration, Instant};

use serde_json::json;
use vexil_sdk::{Client, Context, ErrorCode, ErrorKind, Origin, Reason, Status};

/// A URL nothing listens on.
fn unreachable() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn bootstrap_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("flags.yaml");
    std::fs::write(
        &path,
        "flags:\n  checkout:\n    state: ENABLED\n    variants: {on: true, off: false}\n    defaultVariant: on\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn an_unreachable_upstream_with_a_bootstrap_file_evaluates_from_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let client = Client::builder()
        .upstream(unreachable(), "key-0123456789abcdef")
        .bootstrap_file(bootstrap_file(&dir))
        .build()
        .unwrap();
    let d = client.bool_details("checkout", &Context::new(), false);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (d.value, d.variant.as_deref(), d.reason, d.version),
        (true, Some("on"), Reason::Static, Some(0))
    );
    assert_eq!(client.followed().unwrap().origin(), Origin::Bootstrap);
    // Serving, but not the upstream's word: stale, and not ready.
    let err = client
        .wait_ready(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(client.status(), Status::Stale);
    let state = client.state();
    assert_eq!(
        state.error.as_ref().unwrap().kind(),
        ErrorKind::Unavailable,
        "{state:?}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_without_one_gives_defaults_at_once() {
    let client = Client::new(unreachable(), "key-0123456789abcdef").unwrap();
    let ctx = Context::new().with_targeting_key("u1");
    let started = Instant::now();
    assert!(client.bool_value("checkout", &ctx, true));
    assert_eq!(client.string_value("color", &ctx, "d"), "d");
    assert_eq!(client.int_value("limit", &ctx, 7), 7);
    assert_eq!(client.float_value("ratio", &ctx, 0.5), 0.5);
    assert_eq!(
        client.json_value("obj", &ctx, json!({"a": 1})),
        json!({"a": 1})
    );
    let d = client.bool_details("checkout", &ctx, true);
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (d.value, d.reason, d.error_code, d.version),
        (true, Reason::Error, Some(ErrorCode::ProviderNotReady), None)
    );
    assert_eq!(client.status(), Status::NotReady);
    assert!(client.wait_ready(Duration::from_millis(200)).await.is_err());
}

#[tokio::test]
async fn a_bootstrap_file_alone_is_a_ready_offline_client() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::builder()
        .bootstrap_file(bootstrap_file(&dir))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_millis(10)).await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    assert!(client.bool_value("checkout", &Context::new(), false));
    assert!(client.follower().is_none());
}

#[test]
fn https_and_bad_bootstrap_files_are_refused_when_building() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let err = Client::new("https://flags.example.com", "k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("TLS"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"flags": {"x": {"variants": {"a": 1}, "defaultServe": {"variant": "b"}}}}"#,
    )
    .unwrap();
    let err = Client::builder().bootstrap_file(&bad).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.message().contains("bad.json"), "{err}");
    drop(_guard);
    // Without a runtime, a client with an upstream cannot start.
    let err = Client::new("http://127.0.0.1:1", "k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
