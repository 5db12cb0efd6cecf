//! The body bound: a request body is read whole, within its size and
//! time limits, before the application sees the request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::{App, ConnMetrics, HttpLimits};

/// The application behind the body bounds: a request body is read whole,
/// within `body_timeout` and `max_body_bytes`, before any handler runs. So
/// an answer given before looking at the body (401, 429) leaves the
/// connection reusable, and a body that is too large or too slow is
/// answered in the route family's JSON format and the connection closed.
#[derive(Clone)]
pub(super) struct Bounded<A> {
    pub(super) app: A,
    pub(super) limits: Arc<HttpLimits>,
    pub(super) metrics: Arc<ConnMetrics>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<A: App> hyper::service::Service<Request<Incoming>> for Bounded<A> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl<A: App> Bounded<A> {
    async fn handle(self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let body = if hyper::body::Body::is_end_stream(&body) {
            axum::body::Bytes::new()
        } else {
            match self.read_body(&parts, body).await {
                Ok(bytes) => bytes,
                Err(resp) => return resp,
            }
        };
        self.app.serve(parts, body).await
    }

    async fn read_body(
        &self,
        parts: &axum::http::request::Parts,
        body: Incoming,
    ) -> Result<axum::body::Bytes, Response<Body>> {
        let max = self.limits.max_body_bytes;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || {
            self.refusal(
                parts.uri.path(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &format!("the request body exceeds the limit of {max} bytes (--max-body-bytes)"),
            )
        };
        let deadline = Instant::now() + self.limits.body_timeout;
        if let Some(len) = declared.filter(|len| *len > max as u64) {
            // Read what was announced (up to a bound) so the client sees the
            // answer instead of a reset, then close.
            if len <= 4 * max as u64 {
                let drain = async {
                    let mut body = body;
                    while let Some(Ok(_)) = body.frame().await {}
                };
                let _ = tokio::time::timeout_at(deadline, drain).await;
            }
            return Err(too_large());
        }
        let limited = http_body_util::Limited::new(body, max);
        match tokio::time::timeout_at(deadline, read_all(limited)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => Err(self.refusal(
                parts.uri.path(),
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("cannot read the request body: {e}"),
            )),
            Err(_) => {
                self.metrics.body_timeouts.fetch_add(1, Ordering::Relaxed);
                Err(self.refusal(
                    parts.uri.path(),
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    &format!(
                        "the request body did not arrive within {} ms",
                        self.limits.body_timeout.as_millis()
                    ),
                ))
            }
        }
    }

    /// A refusal before the application saw the request, in the route
    /// family's error format, closing the connection.
    fn refusal(
        &self,
        path: &str,
        status: StatusCode,
        code: &'static str,
        message: &str,
    ) -> Response<Body> {
        let mut resp = self.app.refuse(path, status, code, message);
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }
}

/// Reads a whole body. Most request bodies arrive in one frame: that frame
/// is the answer, without copying or collecting.
async fn read_all(
    mut body: http_body_util::Limited<Incoming>,
) -> Result<axum::body::Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let mut first: Option<axum::body::Bytes> = None;
    let mut more: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        match (&first, &mut more) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut all = Vec::with_capacity(f.len() + data.len());
                all.extend_from_slice(f);
                all.extend_from_slice(&data);
                more = Some(all);
            }
            (Some(_), Some(all)) => all.extend_from_slice(&data),
        }
    }
    Ok(match (more, first) {
        (Some(all), _) => all.into(),
        (None, Some(f)) => f,
        (None, None) => axum::body::Bytes::new(),
    })
}
