//! flagd's gRPC services (`--grpc-listen`) spoken to by a tonic client of
//! the generated code: every `Resolve*` of evaluation v1 and v2, their
//! error codes, ResolveAll, EventStream, SyncFlags, FetchAllFlags,
//! GetMetadata, and who may call.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Request};
use vexil_flagd_grpc::evaluation_v1 as v1;
use vexil_flagd_grpc::evaluation_v2 as v2;
use vexil_flagd_grpc::prost_types::{Struct, Value as PValue, value::Kind};
use vexil_flagd_grpc::sync_v1 as sync;

use crate::support::{ENV, Server};

/// A server with a gRPC listener on a free port, and that port's address.
pub(crate) fn start(extra: &[&str]) -> (Server, String, tempfile::TempDir) {
    let (data, dir) = crate::support::sqlite();
    let addr = free_addr();
    let mut args = vec!["--grpc-listen", addr.as_str()];
    args.extend_from_slice(extra);
    let s = Server::start_with(&data, &args);
    assert!(
        s.banner.contains("grpc            127.0.0.1:"),
        "{}",
        s.banner
    );
    (s, addr, dir)
}

pub(crate) fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

pub(crate) async fn channel(addr: &str) -> Channel {
    let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
    for _ in 0..50 {
        if let Ok(c) = endpoint.connect().await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no gRPC listener on {addr}");
}

/// The flags of `ofrep::setup`, and a string, an object and a flagd-style
/// flag; returns the development server key and a production server key.
pub(crate) async fn setup(s: &Server) -> (String, String) {
    let (server_key, _) = crate::ofrep::setup(s).await;
    let more = [
        (
            "greeting",
            json!({"variants": {"hello": "hi", "formal": "good day"}, "defaultServe": {"variant": "hello"}}),
        ),
        (
            "theme",
            json!({"variants": {"dark": {"bg": "black", "contrast": 2}, "light": {"bg": "white"}}, "defaultServe": {"variant": "dark"}}),
        ),
        (
            "beta",
            json!({"variants": {"yes": true, "no": false}, "defaultServe": {"variant": "no"},
                   "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "yes", null]}}),
        ),
    ];
    for (key, def) in more {
        let (st, _, body) = s
            .admin(
                Method::PUT,
                &format!("{ENV}/flags/{key}"),
                Some(&def),
                &[("if-none-match", "*")],
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
    let (_, _, k) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "prod", "scope": "server", "project": "default", "environment": "production"})),
            &[],
        )
        .await;
    (server_key, k["secret"].as_str().unwrap().to_owned())
}

pub(crate) fn ctx(fields: Value) -> Option<Struct> {
    let Value::Object(map) = fields else {
        panic!("not an object")
    };
    Some(Struct {
        fields: map.into_iter().map(|(k, v)| (k, pvalue(v))).collect(),
    })
}

fn pvalue(v: Value) -> PValue {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(vexil_flagd_grpc::prost_types::ListValue {
            values: a.into_iter().map(pvalue).collect(),
        }),
        Value::Object(_) => Kind::StructValue(ctx(v).unwrap()),
    };
    PValue { kind: Some(kind) }
}

fn string_field(s: &Struct, name: &str) -> String {
    match s.fields.get(name).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(v)) => v.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

/// A request with metadata.
pub(crate) fn req<T>(msg: T, key: Option<&str>, selector: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(k) = key {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    if let Some(sel) = selector {
        r.metadata_mut()
            .insert("flagd-selector", sel.parse().unwrap());
    }
    r
}

#[tokio::test]
async fn evaluation_v2_resolves_every_type() {
    let (s, addr, _dir) = start(&[]);
    let (key, _) = setup(&s).await;
    let mut c = v2::service_client::ServiceClient::new(channel(&addr).await);
    let k = Some(key.as_str());

    let r = c
        .resolve_boolean(req(
            v2::ResolveBooleanRequest {
                flag_key: "checkout".into(),
                context: ctx(json!({"targetingKey": "u1", "plan": "pro"})),
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_deref(), r.reason.as_str()),
        (Some(true), Some("on"), "TARGETING_MATCH")
    );
    assert_eq!(string_field(r.metadata.as_ref().unwrap(), "owner"), "web");

    let r = c
        .resolve_string(req(
            v2::ResolveStringRequest {
                flag_key: "greeting".into(),
                context: None,
            },
            k,
            Some("default/development"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value.as_deref(), r.variant.as_deref(), r.reason.as_str()),
        (Some("hi"), Some("hello"), "STATIC")
    );

    let r = c
        .resolve_float(req(
            v2::ResolveFloatRequest {
                flag_key: "ratio".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.variant.as_deref()), (Some(2.0), Some("two")));

    let r = c
        .resolve_int(req(
            v2::ResolveIntRequest {
                flag_key: "count".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.variant.as_deref()), (Some(2), Some("small")));

    let r = c
        .resolve_object(req(
            v2::ResolveObjectRequest {
                flag_key: "theme".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(string_field(r.value.as_ref().unwrap(), "bg"), "black");
    assert_eq!(r.variant.as_deref(), Some("dark"));

    // flagd-style targeting, evaluated by Vexil's engine.
    let r = c
        .resolve_boolean(req(
            v2::ResolveBooleanRequest {
                flag_key: "beta".into(),
                context: ctx(json!({"tier": "gold"})),
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_deref(), r.reason.as_str()),
        (Some(true), Some("yes"), "TARGETING_MATCH")
    );
}

#[tokio::test]
async fn evaluation_v1_resolves_every_type_and_all() {
    let (s, addr, _dir) = start(&[]);
    let (key, _) = setup(&s).await;
    let mut c = v1::service_client::ServiceClient::new(channel(&addr).await);
    let k = Some(key.as_str());
    let r = c
        .resolve_boolean(req(
            v1::ResolveBooleanRequest {
                flag_key: "checkout".into(),
                context: ctx(json!({"plan": "free"})),
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.value, r.variant.as_str(), r.reason.as_str()),
        (false, "off", "DEFAULT")
    );
    let r = c
        .resolve_string(req(
            v1::ResolveStringRequest {
                flag_key: "greeting".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value.as_str(), r.variant.as_str()), ("hi", "hello"));
    let r = c
        .resolve_float(req(
            v1::ResolveFloatRequest {
                flag_key: "ratio".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.value, 2.0);
    let r = c
        .resolve_int(req(
            v1::ResolveIntRequest {
                flag_key: "count".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.value, r.reason.as_str()), (2, "STATIC"));
    let r = c
        .resolve_object(req(
            v1::ResolveObjectRequest {
                flag_key: "theme".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(string_field(r.value.as_ref().unwrap(), "bg"), "black");

    let all = c
        .resolve_all(req(
            v1::ResolveAllRequest {
                context: ctx(json!({"targetingKey": "u1", "plan": "pro"})),
            },
            k,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let checkout = &all.flags["checkout"];
    assert_eq!(
        (checkout.value.clone(), checkout.variant.as_str()),
        (Some(v1::any_flag::Value::BoolValue(true)), "on")
    );
    assert_eq!(
        all.flags["count"].value,
        Some(v1::any_flag::Value::DoubleValue(2.0))
    );
    assert!(
        !all.flags.contains_key("dark"),
        "a disabled flag without a value is left out"
    );
    assert!(all.flags.contains_key("split") && all.flags.contains_key("theme"));
}

#[tokio::test]
async fn evaluation_errors_map_to_grpc_codes() {
    let (s, addr, _dir) = start(&[]);
    let (key, _) = setup(&s).await;
    let mut c = v2::service_client::ServiceClient::new(channel(&addr).await);
    let k = Some(key.as_str());
    let boolean = |flag: &str, context: Option<Struct>| {
        req(
            v2::ResolveBooleanRequest {
                flag_key: flag.into(),
                context,
            },
            k,
            None,
        )
    };
    let code = |r: Result<tonic::Response<v2::ResolveBooleanResponse>, tonic::Status>| {
        let e = r.unwrap_err();
        (e.code(), e.message().to_owned())
    };
    let e = c
        .resolve_boolean(req(
            v2::ResolveBooleanRequest {
                flag_key: "count".into(),
                context: None,
            },
            None,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "no key, nothing open");
    let (c1, m1) = code(c.resolve_boolean(boolean("missing", None)).await);
    assert_eq!(c1, Code::NotFound, "{m1}");
    assert!(m1.starts_with("FLAG_NOT_FOUND"), "{m1}");
    let (c2, m2) = code(c.resolve_boolean(boolean("dark", None)).await);
    assert_eq!(c2, Code::NotFound, "disabled: {m2}");
    assert!(m2.contains("disabled"), "{m2}");
    let (c3, m3) = code(c.resolve_boolean(boolean("greeting", None)).await);
    assert_eq!(c3, Code::InvalidArgument, "{m3}");
    assert!(m3.starts_with("TYPE_MISMATCH"), "{m3}");
    let e = c
        .resolve_string(req(
            v2::ResolveStringRequest {
                flag_key: "split".into(),
                context: None,
            },
            k,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unknown, "{}", e.message());
    assert!(e.message().starts_with("TARGETING_KEY_MISSING"));
}

#[tokio::test]
async fn callers_need_a_server_key_of_the_environment() {
    let (s, addr, _dir) = start(&["--grpc-open-env", "default/production"]);
    assert!(
        s.banner.contains("grpc open envs  default/production"),
        "{}",
        s.banner
    );
    let (dev, prod) = setup(&s).await;
    let (_, _, client) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": "web", "scope": "client", "project": "default", "environment": "development"})),
            &[],
        )
        .await;
    let client = client["secret"].as_str().unwrap().to_owned();
    let ch = channel(&addr).await;
    let mut c = v2::service_client::ServiceClient::new(ch.clone());
    let call = |key: Option<&str>, selector: Option<&str>| {
        req(
            v2::ResolveIntRequest {
                flag_key: "count".into(),
                context: None,
            },
            key,
            selector,
        )
    };
    let code = |r: Result<tonic::Response<v2::ResolveIntResponse>, tonic::Status>| match r {
        Ok(r) => (Code::Ok, r.into_inner().value),
        Err(e) => (e.code(), None),
    };
    // No key and no selector: the only open environment (production,
    // which has no `count`).
    assert_eq!(
        code(c.resolve_int(call(None, None)).await).0,
        Code::NotFound
    );
    assert_eq!(
        code(c.resolve_int(call(None, Some("default/development"))).await).0,
        Code::Unauthenticated
    );
    assert_eq!(
        code(
            c.resolve_int(call(Some("vxs_wrong_key_0123456789"), None))
                .await
        )
        .0,
        Code::PermissionDenied
    );
    assert_eq!(
        code(c.resolve_int(call(Some(&client), None)).await).0,
        Code::PermissionDenied,
        "client keys do not read flagd's services"
    );
    assert_eq!(
        code(
            c.resolve_int(call(Some(&prod), Some("default/development")))
                .await
        )
        .0,
        Code::PermissionDenied,
        "a key of another environment"
    );
    assert_eq!(
        code(c.resolve_int(call(Some(&dev), None)).await),
        (Code::Ok, Some(2)),
        "an empty selector means the key's environment"
    );
    // Production is open: no key needed, and it has no `count` flag.
    assert_eq!(
        code(c.resolve_int(call(None, Some("default/production"))).await).0,
        Code::NotFound
    );
    // The sync service checks the same way, with the request's selector.
    let mut sc = sync::flag_sync_service_client::FlagSyncServiceClient::new(ch);
    let fetch = |key: Option<&str>, selector: &str| {
        req(
            sync::FetchAllFlagsRequest {
                provider_id: "test".into(),
                selector: selector.into(),
            },
            key,
            None,
        )
    };
    let e = sc
        .fetch_all_flags(fetch(None, "default/development"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = sc
        .fetch_all_flags(fetch(Some(&prod), "default/development"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let open = sc
        .fetch_all_flags(fetch(None, "default/production"))
        .await
        .unwrap()
        .into_inner();
    let doc: Value = serde_json::from_str(&open.flag_configuration).unwrap();
    assert_eq!(doc["flags"], json!({}));
}

/// Providers ping idle connections (every 30 s by default); a server that
/// answers frequent pings without streams with GOAWAY causes reconnect
/// storms. Vexil answers every ping.
#[tokio::test]
async fn idle_connections_may_ping_as_often_as_they_like() {
    let (_s, addr, _dir) = start(&[]);
    let _ = channel(&addr).await; // listening
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (_send, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let mut pings = conn.ping_pong().unwrap();
    let driver = tokio::spawn(conn);
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(2), pings.ping(h2::Ping::opaque()))
            .await
            .expect("a pong in time")
            .expect("no GOAWAY");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!driver.is_finished(), "the connection is still open");
}

/// A connection on which nothing moves for `--idle-timeout-ms` is closed:
/// a peer that never starts HTTP/2 goes, while the server's own pings keep
/// a healthy idle HTTP/2 connection open.
#[tokio::test]
async fn silent_connections_are_closed_and_idle_http2_ones_kept() {
    use tokio::io::AsyncReadExt;
    let (_s, addr, _dir) = start(&["--idle-timeout-ms", "600", "--heartbeat-ms", "300"]);
    let _ = channel(&addr).await; // listening
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (_send, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    // The server's SETTINGS come first; then the connection closes.
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the silent connection is closed");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!driver.is_finished(), "the HTTP/2 connection is still open");
}
