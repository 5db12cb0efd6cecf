//! `POST /api/v1/evaluate`: every flag, or a listed set, for one context,
//! with the environment version that answered; `minVersion` for
//! read-your-writes; `explain` for the trace of each answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use vexil_engine::{Evaluation, ValueType};
use vexil_protocol::native::{NativeAnswer, Stale, parse_native_request};

use super::Plane;
use super::caller::{Needs, caller, cors, error, json_response, overloaded, retry_after};

/// How long a request naming a `minVersion` this server has not reached
/// waits for it before answering "stale".
const MIN_VERSION_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a waiting request looks for a newer version.
const MIN_VERSION_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// All flags, or a listed set, for one context. With `minVersion`, a
/// server that has not reached it waits up to two seconds, then answers
/// `503 stale` rather than an old value.
pub(super) async fn evaluate(
    State(plane): State<Arc<Plane>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&plane, &headers, &body).await
}

/// The answer, for the router's handler and for the accept loop.
pub(super) async fn answer(plane: &Plane, headers: &HeaderMap, body: &[u8]) -> Response {
    let started = tokio::time::Instant::now();
    let mut resp = evaluate_inner(plane, headers, body).await;
    cors(headers, &mut resp);
    plane
        .metrics
        .hot
        .native_evaluate
        .observe(resp.status().as_u16(), started.elapsed());
    resp
}

async fn evaluate_inner(plane: &Plane, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(_in_flight) = plane.limiter.enter() else {
        return overloaded();
    };
    let mut env = match caller(plane, headers, Needs::Values) {
        Ok(c) => c.env,
        Err(resp) => return *resp,
    };
    let req = match parse_native_request(body) {
        Ok(r) => r,
        Err(msg) => return error(StatusCode::BAD_REQUEST, None, "GENERAL", &msg),
    };
    if let Some(min) = req.min_version {
        let deadline = tokio::time::Instant::now() + MIN_VERSION_WAIT;
        while env.env.version < min && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(MIN_VERSION_POLL).await;
            if let Some(fresh) = plane.snapshot(env.env.id) {
                env = fresh;
            }
        }
        if env.env.version < min {
            let body = vexil_protocol::json::encode(&Stale::new(env.env.version, min));
            return retry_after(json_response(StatusCode::SERVICE_UNAVAILABLE, body), 1);
        }
    }
    let ctx = req.context.with_timestamp(plane.clock.unix_seconds());
    // The key asked for, or (evaluating all) none: the evaluation names it.
    // Explain mode records each evaluation's steps as well (a walk that
    // allocates; the plain path does not take it).
    let mut traces: Vec<vexil_engine::Trace> = Vec::new();
    let evals: Vec<(Option<&str>, Evaluation<'_>)> = match (&req.flags, req.explain) {
        (Some(keys), false) => keys
            .iter()
            .map(|k| {
                (
                    Some(k.as_str()),
                    env.snapshot.evaluate(k, &ctx, ValueType::Any),
                )
            })
            .collect(),
        (None, false) => {
            // Every flag, plainly: written from each flag's prepared JSON.
            let evals = env.snapshot.evaluate_all(&ctx);
            env.evaluations.add_all(&evals);
            let prepared = env.prepared();
            let mut body = Vec::with_capacity(prepared.size_hint() + 64);
            prepared.write_native(&mut body, env.env.version, &evals);
            return json_response(StatusCode::OK, body);
        }
        (Some(keys), true) => keys
            .iter()
            .map(|k| {
                let (e, trace) = env.snapshot.explain(k, &ctx, ValueType::Any);
                traces.push(trace);
                (Some(k.as_str()), e)
            })
            .collect(),
        (None, true) => env
            .snapshot
            .explain_all(&ctx)
            .into_iter()
            .map(|(e, trace)| {
                traces.push(trace);
                (None, e)
            })
            .collect(),
    };
    env.evaluations.add_all(evals.iter().map(|(_, e)| e));
    let body = vexil_protocol::json::encode(&NativeAnswer {
        version: env.env.version,
        flags: &evals,
        traces: req.explain.then_some(traces.as_slice()),
    });
    json_response(StatusCode::OK, body)
}
