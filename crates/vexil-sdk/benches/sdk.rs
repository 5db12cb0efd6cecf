//! What the SDK adds to an evaluation: `Client::bool_value` on a warm
//! client against the engine's own `Snapshot::evaluate` for the same flag
//! and context, the client's details, and the OpenFeature provider (alone,
//! and through the `open-feature` crate's client).
//!
//! Run: `taskset -c 1 cargo bench -p vexil-sdk --bench sdk -- --warm-up-time 2 --measurement-time 5`
//!
//! The flag and context are the engine benchmark's: a rule of two clauses
//! serving a 50/50 rollout, in a snapshot of 50 such flags, and a context
//! of a targeting key and four attributes built once. The client serves a
//! bootstrap file (no network): evaluation reads the same slot whether the
//! state came from a file or from a follower.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use open_feature::provider::FeatureProvider as _;
use open_feature::{EvaluationContext, OpenFeature};
use serde_json::{Value, json};
use vexil_engine::{Context, ValueType};
use vexil_sdk::Client;
use vexil_sdk::openfeature::VexilProvider;

const FLAG: &str = "flag-7";

fn native_flag() -> Value {
    json!({
        "variants": {"on": true, "off": false},
        "defaultServe": {"variant": "off"},
        "rules": [{
            "clauses": [
                {"attribute": "country", "op": "in", "values": ["US", "CA", "GB"]},
                {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}
            ],
            "serve": {"rollout": {"weights": {"on": 50, "off": 50}}}
        }]
    })
}

fn context_json() -> Value {
    json!({
        "targetingKey": "user-1234567",
        "country": "CA",
        "plan": "pro",
        "email": "someone@example.com",
        "appVersion": "4.2.0"
    })
}

fn of_context() -> EvaluationContext {
    EvaluationContext::default()
        .with_targeting_key("user-1234567")
        .with_custom_field("country", "CA")
        .with_custom_field("plan", "pro")
        .with_custom_field("email", "someone@example.com")
        .with_custom_field("appVersion", "4.2.0")
}

fn evaluation(c: &mut Criterion) {
    let flags: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("flag-{i}"), native_flag()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    std::fs::write(&path, json!({"flags": flags}).to_string()).unwrap();
    let client = Client::builder().bootstrap_file(&path).build().unwrap();
    let snapshot = client.followed().unwrap().snapshot().clone();
    let ctx = Context::from_json(context_json()).unwrap();
    // The same answer both ways.
    assert_eq!(
        snapshot.evaluate(FLAG, &ctx, ValueType::Bool).value,
        Some(&json!(client.bool_value(FLAG, &ctx, false)))
    );

    let mut g = c.benchmark_group("bool");
    g.bench_function("engine_snapshot_evaluate", |b| {
        b.iter(|| {
            let e = snapshot.evaluate(black_box(FLAG), black_box(&ctx), ValueType::Bool);
            black_box(e.value.and_then(Value::as_bool).unwrap_or(false))
        })
    });
    g.bench_function("client_bool_value", |b| {
        b.iter(|| black_box(client.bool_value(black_box(FLAG), black_box(&ctx), false)))
    });
    g.bench_function("client_bool_details", |b| {
        b.iter(|| black_box(client.bool_details(black_box(FLAG), black_box(&ctx), false)))
    });

    // OpenFeature: the provider alone (its futures are ready at once),
    // then through the `open-feature` client (hooks, context merging).
    let provider = VexilProvider::new(client.clone());
    let of_ctx = of_context();
    g.bench_function("openfeature_provider_resolve", |b| {
        b.iter(|| {
            let r = provider
                .resolve_bool_value(black_box(FLAG), black_box(&of_ctx))
                .now_or_never()
                .unwrap();
            black_box(r.map(|d| d.value))
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let of_client = runtime.block_on(async {
        let mut api = OpenFeature::singleton_mut().await;
        api.set_provider(VexilProvider::new(client.clone())).await;
        api.create_client()
    });
    g.bench_function("openfeature_client_get_bool_value", |b| {
        b.iter(|| {
            let r = runtime.block_on(of_client.get_bool_value(
                black_box(FLAG),
                Some(black_box(&of_ctx)),
                None,
            ));
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
