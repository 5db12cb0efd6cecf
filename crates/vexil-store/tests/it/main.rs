//! The store contract, run against every backend (SQLite always,
//! PostgreSQL when `VEXIL_TEST_DATABASE_URL` is set; required on CI).

mod contract;
