//! Tests of the real `vexil` binary.

mod cli;
