//! JSON shapes of evaluation results, in OpenFeature / OFREP field names.

use serde_json::{Map, Value, json};
use vexil_engine::Evaluation;

/// One evaluation as `{key, value, variant, reason, errorCode,
/// errorDetails, metadata}`; absent parts are left out.
pub(crate) fn evaluation_json(key: &str, eval: &Evaluation<'_>) -> Value {
    let mut out = Map::new();
    out.insert("key".into(), json!(key));
    if let Some(v) = eval.value {
        out.insert("value".into(), v.clone());
    }
    if let Some(v) = eval.variant {
        out.insert("variant".into(), json!(v));
    }
    out.insert("reason".into(), json!(eval.reason.as_str()));
    if let Some(e) = &eval.error {
        out.insert("errorCode".into(), json!(e.code.as_str()));
        out.insert("errorDetails".into(), json!(e.details));
    }
    out.insert(
        "metadata".into(),
        Value::Object(eval.metadata().cloned().unwrap_or_default()),
    );
    Value::Object(out)
}

/// Writes one line to standard output. A closed pipe (`vexil export |
/// head -1`) ends the process quietly with status 0, as `head` asked for
/// no more; `println!` would panic instead.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(2);
        }
    }
}

/// `println!` that exits quietly on a closed pipe (see [`line()`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use out;
