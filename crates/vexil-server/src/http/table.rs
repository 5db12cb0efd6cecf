//! `Table`: a router that also lists what it routes, so that the list of
//! routes (for the auth walk, the OpenAPI check) comes from the router
//! itself rather than from a list kept by hand.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};

/// A router and its routes, as (method, path template).
pub(crate) struct Table<S> {
    pub(crate) router: Router<S>,
    pub(crate) routes: Vec<(Method, String)>,
}

impl<S: Clone + Send + Sync + 'static> Table<S> {
    pub(crate) fn new() -> Self {
        Table {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    /// Routes `method` on `path` to `handler`.
    pub(crate) fn route<H, T>(mut self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = match method.as_str() {
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            "OPTIONS" => MethodFilter::OPTIONS,
            "PATCH" => MethodFilter::PATCH,
            _ => MethodFilter::GET,
        };
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path.to_owned()));
        self
    }
}
