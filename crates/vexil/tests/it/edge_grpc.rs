//! flagd's gRPC services on `vexil edge --grpc-listen`: the edge serves
//! them from what it follows, with the keys it learnt from upstream
//! (offline), and passes changes on to an open EventStream.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tonic::Request;
use tonic::transport::Channel;
use vexil_flagd_grpc::evaluation_v2 as v2;
use vexil_flagd_grpc::prost_types::{Struct, Value, value::Kind};

use crate::edge::{eventually, readyz, setup};
use crate::support::{ENV, Server, sqlite};

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn with_key<T>(msg: T, key: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

#[tokio::test]
async fn the_edge_serves_flagd_rpc_providers() {
    let (data, _dir) = sqlite();
    let server = Server::start(&data);
    let (server_key, client_key) = setup(&server).await;
    let grpc = free_addr();
    let edge = Server::spawn_edge(
        crate::BIN,
        &server.base,
        &[&server_key],
        &["--grpc-listen", &grpc],
    );
    assert!(
        edge.banner.contains("grpc            127.0.0.1:"),
        "{}",
        edge.banner
    );
    eventually("edge ready", || async {
        readyz(&edge).await.0 == StatusCode::OK
    })
    .await;
    let endpoint = Channel::from_shared(format!("http://{grpc}")).unwrap();
    let mut channel = None;
    for _ in 0..50 {
        if let Ok(c) = endpoint.connect().await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = v2::service_client::ServiceClient::new(channel.expect("the edge's gRPC listener"));
    let ctx = Struct {
        fields: [(
            "targetingKey".to_owned(),
            Value {
                kind: Some(Kind::StringValue("u3".into())),
            },
        )]
        .into(),
    };
    let r = c
        .resolve_string(with_key(
            v2::ResolveStringRequest {
                flag_key: "banner".into(),
                context: Some(ctx),
            },
            &server_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
        (Some("blue"), Some("blue"), "TARGETING_MATCH")
    );
    let e = c
        .resolve_string(with_key(
            v2::ResolveStringRequest {
                flag_key: "banner".into(),
                context: None,
            },
            &client_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // A change at the server reaches an EventStream at the edge.
    let mut events = c
        .event_stream(with_key(v2::EventStreamRequest {}, &server_key))
        .await
        .unwrap()
        .into_inner();
    let next = async |events: &mut tonic::Streaming<v2::EventStreamResponse>| {
        tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert_eq!(next(&mut events).await.r#type, "provider_ready");
    let (st, _, body) = server
        .admin(
            Method::POST,
            &format!("{ENV}/flags/banner/toggle"),
            Some(&json!({"enabled": false})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let change = loop {
        let e = next(&mut events).await;
        if e.r#type != "keep_alive" {
            break e;
        }
    };
    assert_eq!(change.r#type, "configuration_change");
    let Some(Kind::StructValue(flags)) = change.data.unwrap().fields["flags"].kind.clone() else {
        panic!("no flags in the change")
    };
    assert!(flags.fields.contains_key("banner"), "{flags:?}");
}
