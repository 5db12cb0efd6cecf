//! The store contract, run against every backend (memory and SQLite always,
//! PostgreSQL when `VEXIL_TEST_DATABASE_URL` is set; required on CI), and
//! the read-only flag file store.

mod contract;
mod file;
