//! The evaluation routes the accept loop answers without the router.

use axum::http::Method;

use super::{Plane, native, ofrep};

/// An evaluation route the accept loop answers itself, without the
/// router and its extractors (they cost a tenth of these routes'
/// throughput). The router serves the same routes through the same
/// functions, for the requests this match leaves to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hot<'a> {
    /// `POST /ofrep/v1/evaluate/flags/{key}`, with the key as sent.
    OfrepSingle(&'a str),
    /// `POST /ofrep/v1/evaluate/flags`.
    OfrepBulk,
    /// `POST /api/v1/evaluate`.
    Native,
}

impl<'a> Hot<'a> {
    /// The route of a request, when it is one of these. A key with a
    /// percent-escape goes to the router, which decodes it.
    pub(crate) fn of(method: &Method, path: &'a str) -> Option<Self> {
        if method != Method::POST {
            return None;
        }
        match path {
            "/ofrep/v1/evaluate/flags" => Some(Hot::OfrepBulk),
            "/api/v1/evaluate" => Some(Hot::Native),
            _ => path
                .strip_prefix("/ofrep/v1/evaluate/flags/")
                .filter(|key| !key.is_empty() && !key.contains(['/', '%']))
                .map(Hot::OfrepSingle),
        }
    }

    /// Answers the request, as the route's handler would.
    pub(crate) async fn answer(
        self,
        plane: &Plane,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> axum::response::Response {
        match self {
            Hot::OfrepSingle(key) => ofrep::answer_single(plane, key, headers, body),
            Hot::OfrepBulk => ofrep::answer_bulk(plane, headers, body),
            Hot::Native => native::answer(plane, headers, body).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::Hot;

    #[test]
    fn the_accept_loop_answers_the_evaluation_routes_and_leaves_the_rest_to_the_router() {
        let post = |path| Hot::of(&Method::POST, path);
        assert_eq!(post("/ofrep/v1/evaluate/flags"), Some(Hot::OfrepBulk));
        assert_eq!(post("/api/v1/evaluate"), Some(Hot::Native));
        assert_eq!(
            post("/ofrep/v1/evaluate/flags/new-checkout"),
            Some(Hot::OfrepSingle("new-checkout"))
        );
        // The router decodes escapes and answers what does not match.
        assert_eq!(post("/ofrep/v1/evaluate/flags/new%2Dcheckout"), None);
        assert_eq!(post("/ofrep/v1/evaluate/flags/"), None);
        assert_eq!(post("/ofrep/v1/evaluate/flags/a/b"), None);
        assert_eq!(post("/api/v1/evaluate/"), None);
        assert_eq!(Hot::of(&Method::GET, "/ofrep/v1/evaluate/flags"), None);
        assert_eq!(Hot::of(&Method::OPTIONS, "/api/v1/evaluate"), None);
    }
}
