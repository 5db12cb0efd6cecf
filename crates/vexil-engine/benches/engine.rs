//! Engine benchmarks: evaluation (native and flagd form), evaluate_all,
//! context building, and compiling large documents (time and memory).
//!
//! Run: `cargo bench -p vexil-engine --bench engine`

#![allow(unsafe_code, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use vexil_engine::model::FlagDef;
use vexil_engine::{
    Context, Document, Format, Keyed, ValueType, compile, compile_reusing, evaluate_all_into, load,
};

/// Counts live heap bytes, to report what a snapshot occupies; only while
/// `COUNTING` is set, so that the timed benchmarks pay one plain load per
/// allocation, not a locked add (which cost the context benchmark, with 12
/// allocations and frees, about 55 ns of 450).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A flag with a 2-clause rule serving a 50/50 rollout, native form.
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

/// The same flag in flagd form.
fn flagd_flag() -> Value {
    json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "targeting": {"if": [
            {"and": [
                {"in": [{"var": "country"}, ["US", "CA", "GB"]]},
                {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
            ]},
            {"fractional": [["on", 50], ["off", 50]]},
            null
        ]}
    })
}

/// A static flag: no rules.
fn static_flag() -> Value {
    json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}})
}

fn doc_of(n: usize, flag: fn() -> Value) -> String {
    let flags: serde_json::Map<String, Value> =
        (0..n).map(|i| (format!("flag-{i}"), flag())).collect();
    json!({"flags": flags}).to_string()
}

fn context() -> Context {
    Context::from_json(json!({
        "targetingKey": "user-1234567",
        "country": "CA",
        "plan": "pro",
        "email": "someone@example.com",
        "appVersion": "4.2.0"
    }))
    .unwrap()
}

fn evaluation(c: &mut Criterion) {
    let native = load(&doc_of(50, native_flag), Format::Native)
        .unwrap()
        .snapshot;
    let flagd = load(&doc_of(50, flagd_flag), Format::Flagd)
        .unwrap()
        .snapshot;
    let statics = load(&doc_of(50, static_flag), Format::Native)
        .unwrap()
        .snapshot;
    let ctx = context();
    assert_eq!(
        native
            .evaluate("flag-7", &ctx, ValueType::Bool)
            .reason
            .as_str(),
        "SPLIT"
    );
    assert_eq!(
        flagd
            .evaluate("flag-7", &ctx, ValueType::Bool)
            .reason
            .as_str(),
        "TARGETING_MATCH"
    );

    let mut g = c.benchmark_group("evaluate");
    g.bench_function("native_2_clauses_rollout", |b| {
        b.iter(|| {
            black_box(
                native
                    .evaluate(black_box("flag-7"), black_box(&ctx), ValueType::Bool)
                    .value,
            )
        })
    });
    g.bench_function("flagd_2_clauses_fractional", |b| {
        b.iter(|| {
            black_box(
                flagd
                    .evaluate(black_box("flag-7"), black_box(&ctx), ValueType::Bool)
                    .value,
            )
        })
    });
    g.bench_function("native_0_rules", |b| {
        b.iter(|| {
            black_box(
                statics
                    .evaluate(black_box("flag-7"), black_box(&ctx), ValueType::Bool)
                    .value,
            )
        })
    });
    g.bench_function("native_not_found", |b| {
        b.iter(|| {
            black_box(
                native
                    .evaluate(black_box("no-such-flag"), black_box(&ctx), ValueType::Bool)
                    .reason,
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("evaluate_all");
    let mut out = Vec::with_capacity(64);
    g.bench_function("native_50_flags", |b| {
        b.iter(|| {
            out.clear();
            evaluate_all_into(&native, black_box(&ctx), &mut out);
            black_box(out.len())
        })
    });
    let mut out = Vec::with_capacity(64);
    g.bench_function("flagd_50_flags", |b| {
        b.iter(|| {
            out.clear();
            evaluate_all_into(&flagd, black_box(&ctx), &mut out);
            black_box(out.len())
        })
    });
    g.finish();

    let text = r#"{"targetingKey":"user-1234567","country":"CA","plan":"pro","email":"someone@example.com","appVersion":"4.2.0"}"#;
    c.bench_function("context/from_json_str_5_attributes", |b| {
        b.iter(|| black_box(Context::from_json_str(black_box(text)).unwrap()))
    });
}

fn compilation(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for n in [10_000usize, 100_000] {
        let text = doc_of(n, native_flag);
        let doc: Document = serde_json::from_str(&text).unwrap();
        COUNTING.store(true, Ordering::Relaxed);
        let before = LIVE.load(Ordering::Relaxed);
        let compiled = compile(&doc).unwrap();
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        COUNTING.store(false, Ordering::Relaxed);
        println!(
            "compile/{n}_flags: snapshot holds {:.1} MiB ({} bytes per flag)",
            bytes as f64 / (1024.0 * 1024.0),
            bytes / n as isize
        );
        drop(compiled);
        g.bench_function(format!("{n}_flags"), |b| {
            b.iter_batched(
                || (),
                |_| black_box(compile(&doc).unwrap()),
                BatchSize::PerIteration,
            )
        });
        // The write path's case: one flag changed, the rest shared with
        // the compiled prior version.
        let prior = compile(&doc).unwrap().snapshot;
        let mut pairs = doc.flags.shared().to_vec();
        let mut changed: FlagDef = (*pairs[n / 2].1).clone();
        changed.enabled = !changed.enabled;
        pairs[n / 2].1 = std::sync::Arc::new(changed);
        let next = Document {
            flags: Keyed::from_shared(pairs),
            ..doc.clone()
        };
        let never = AtomicBool::new(false);
        g.bench_function(format!("reusing_one_changed_of_{n}_flags"), |b| {
            b.iter_batched(
                || (),
                |_| black_box(compile_reusing(&next, &doc, &prior, &never).unwrap()),
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("parse_json_{n}_flags"), |b| {
            b.iter(|| black_box(serde_json::from_str::<Document>(&text).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, evaluation, compilation);
criterion_main!(benches);
