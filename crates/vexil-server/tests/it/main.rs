//! Tests of the server, run in-process on 127.0.0.1:0 through
//! `vexil_server::run` and spoken to over HTTP (tests of the binary itself
//! are in the `vexil` crate).

mod admin;
mod auth;
mod bucketing;
mod connections;
mod content_type;
mod file_mode;
mod flagd_providers;
mod grpc;
mod grpc_streams;
mod ofrep;
mod openapi;
mod providers;
mod schemathesis;
mod stream;
mod support;
mod ui;
mod ui_browser;
