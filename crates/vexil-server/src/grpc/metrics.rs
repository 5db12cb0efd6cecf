//! The gRPC services' series for `/metrics`: flags left out of the sync
//! document per environment, and open gRPC streams.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Shared by the server's and the edge's `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct GrpcMetrics {
    /// `project/environment` to the flags its latest sync document left
    /// out.
    left_out: Mutex<BTreeMap<String, usize>>,
    /// Open SyncFlags and EventStream streams.
    pub(crate) streams: AtomicI64,
}

impl GrpcMetrics {
    /// Records how many flags an environment's sync document left out.
    pub(crate) fn set_left_out(&self, label: &str, n: usize) {
        let mut map = self.left_out.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(label.to_owned(), n);
    }

    /// Writes the series in Prometheus text format.
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP vexil_flagd_flags_left_out Flags of an environment left out of the flagd sync document: they have no exact flagd form."
        );
        let _ = writeln!(out, "# TYPE vexil_flagd_flags_left_out gauge");
        let map = self.left_out.lock().unwrap_or_else(|p| p.into_inner());
        for (label, n) in map.iter() {
            let _ = writeln!(
                out,
                "vexil_flagd_flags_left_out{{environment=\"{}\"}} {n}",
                crate::metrics::escape(label)
            );
        }
        let _ = writeln!(
            out,
            "# HELP vexil_grpc_streams Open gRPC streams (SyncFlags, EventStream)."
        );
        let _ = writeln!(out, "# TYPE vexil_grpc_streams gauge");
        let _ = writeln!(
            out,
            "vexil_grpc_streams {}",
            self.streams.load(Ordering::Relaxed)
        );
    }
}

/// Counts an open stream while it lives.
pub(crate) struct StreamGuard(Arc<Metrics>);

impl StreamGuard {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        metrics.grpc.streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(metrics)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.grpc.streams.fetch_sub(1, Ordering::Relaxed);
    }
}
