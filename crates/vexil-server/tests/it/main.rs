//! Tests of the real `vexil` binary: the CLI, and the server started on an
//! ephemeral port and spoken to over HTTP.

mod admin;
mod auth;
mod cli;
mod client;
mod connections;
mod content_type;
mod durability;
mod file_mode;
mod ofrep;
mod openapi;
mod providers;
mod schemathesis;
mod stream;
mod support;
