//! The streams of flagd's gRPC services: SyncFlags (the flagd document on
//! connect and after every change), FetchAllFlags, GetMetadata, and the
//! evaluation EventStream (ready, configuration change, keep-alive).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::timeout;
use tonic::Code;
use vexil_flagd_grpc::evaluation_v2 as v2;
use vexil_flagd_grpc::prost_types::value::Kind;
use vexil_flagd_grpc::sync_v1 as sync;

use crate::grpc::{channel, req, setup, start};
use crate::support::{ENV, Server};

/// Changes `ratio`'s default through the admin API.
async fn change_ratio(s: &Server, variant: &str) {
    let flag = format!("{ENV}/flags/ratio");
    let (_, headers, _) = s.admin(Method::GET, &flag, None, &[]).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &flag,
            Some(&json!({"variants": {"two": 2.0, "half": 0.5}, "defaultServe": {"variant": variant}})),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn sync_flags_sends_the_document_and_every_change() {
    let (s, addr, _dir) = start(&[]);
    let (key, _) = setup(&s).await;
    // A flag flagd cannot express exactly (a regular expression).
    let (st, _, body) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/pattern"),
            Some(&json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"},
                "rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": ["@example\\.com$"]}], "serve": {"variant": "on"}}]})),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let mut c = sync::flag_sync_service_client::FlagSyncServiceClient::new(channel(&addr).await);
    let started = tokio::time::Instant::now();
    let mut stream = c
        .sync_flags(req(
            sync::SyncFlagsRequest {
                provider_id: "test".into(),
                selector: String::new(),
            },
            Some(&key),
            Some("default/development"),
        ))
        .await
        .unwrap()
        .into_inner();
    let first = timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "within the providers' deadline"
    );
    let doc: Value = serde_json::from_str(&first.flag_configuration).unwrap();
    assert_eq!(
        doc["flags"]["ratio"],
        json!({"state": "ENABLED", "variants": {"two": 2.0, "half": 0.5}, "defaultVariant": "two"})
    );
    assert_eq!(doc["flags"]["dark"]["state"], "DISABLED");
    assert!(doc["flags"]["beta"]["targeting"].is_object());
    // Rules and rollouts translate; a regular expression is left out, and counted.
    assert!(doc["flags"]["checkout"]["targeting"].is_object(), "{doc}");
    assert!(doc["flags"]["split"]["targeting"].is_object(), "{doc}");
    assert!(doc["flags"].get("pattern").is_none(), "{doc}");
    assert_eq!(
        s.metric("vexil_flagd_flags_left_out{environment=\"default/development\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(s.metric("vexil_grpc_streams").await, Some(1.0));

    change_ratio(&s, "half").await;
    let next = timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a new document after the write")
        .unwrap()
        .unwrap();
    let doc: Value = serde_json::from_str(&next.flag_configuration).unwrap();
    assert_eq!(doc["flags"]["ratio"]["defaultVariant"], "half");

    let all = c
        .fetch_all_flags(req(
            sync::FetchAllFlagsRequest {
                provider_id: "test".into(),
                selector: "default/development".into(),
            },
            Some(&key),
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.flag_configuration, next.flag_configuration);

    let e = c
        .get_metadata(req(sync::GetMetadataRequest {}, Some(&key), None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[tokio::test]
async fn event_stream_says_ready_changed_and_alive() {
    let (s, addr, _dir) = start(&["--grpc-event-keepalive-ms", "300"]);
    let (key, _) = setup(&s).await;
    let mut c = v2::service_client::ServiceClient::new(channel(&addr).await);
    let mut stream = c
        .event_stream(req(v2::EventStreamRequest {}, Some(&key), None))
        .await
        .unwrap()
        .into_inner();
    let mut next = async || {
        timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert_eq!(next().await.r#type, "provider_ready");
    change_ratio(&s, "half").await;
    // Keep-alives may come first.
    let change = loop {
        let e = next().await;
        if e.r#type != "keep_alive" {
            break e;
        }
    };
    assert_eq!(change.r#type, "configuration_change");
    let flags = match change.data.unwrap().fields["flags"].kind.clone() {
        Some(Kind::StructValue(s)) => s,
        other => panic!("{other:?}"),
    };
    let keys: Vec<&String> = flags.fields.keys().collect();
    assert_eq!(keys, ["ratio"]);
    assert_eq!(next().await.r#type, "keep_alive");
}

#[tokio::test]
async fn a_stream_ends_when_its_key_is_revoked() {
    let (s, addr, _dir) = start(&[]);
    setup(&s).await;
    let (_, _, k) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "provider", "scope": "server", "project": "default", "environment": "development"})),
            &[],
        )
        .await;
    let key = k["secret"].as_str().unwrap();
    let mut c = sync::flag_sync_service_client::FlagSyncServiceClient::new(channel(&addr).await);
    let mut stream = c
        .sync_flags(req(
            sync::SyncFlagsRequest {
                provider_id: "test".into(),
                selector: String::new(),
            },
            Some(key),
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    s.revoke(&k["id"]).await;
    let end = timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends");
    assert_eq!(end.unwrap_err().code(), Code::PermissionDenied);
}
