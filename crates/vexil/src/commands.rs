//! The one-shot commands: `eval` and `validate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use vexil_engine::{Context, Format, LoadError, Reason, ValueType, load};

/// What `vexil eval` needs.
pub(crate) struct EvalInput<'a> {
    pub(crate) flags: &'a Path,
    pub(crate) flag: &'a str,
    pub(crate) context: &'a str,
    pub(crate) value_type: ValueType,
    pub(crate) format: Format,
    /// Evaluation time, seconds since the Unix epoch.
    pub(crate) now: i64,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read flag file {}", path.display()))
}

/// Evaluates one flag and prints the result as one JSON object.
pub(crate) fn eval(input: &EvalInput<'_>) -> Result<ExitCode> {
    let text = read(input.flags)?;
    let compiled = match load(&text, input.format) {
        Ok(c) => c,
        // As `vexil serve --flags` does (and flagd): invalid flags do not
        // take the file down; they evaluate to PARSE_ERROR.
        Err(e @ LoadError::Invalid(_)) => vexil_engine::parse(&text, input.format)
            .ok()
            .and_then(|source| vexil_engine::compile_serving(&source.into_native_serving()).ok())
            .ok_or_else(|| load_error(input.flags, &e))?,
        Err(e) => return Err(load_error(input.flags, &e)),
    };
    for w in &compiled.warnings {
        eprintln!("warning: {}: {w}", input.flags.display());
    }
    let ctx = Context::from_json_str(input.context)
        .context("invalid --context")?
        .with_timestamp(input.now);
    let eval = compiled
        .snapshot
        .evaluate(input.flag, &ctx, input.value_type);
    crate::output::out!(
        "{}",
        String::from_utf8_lossy(&vexil_protocol::json::encode(
            &vexil_protocol::ofrep::Report::new(input.flag, &eval)
        ))
    );
    Ok(if eval.reason == Reason::Error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Validates a flag file, printing every problem (structural ones
/// included) as `FILE:LINE: POINTER: MESSAGE`.
pub(crate) fn validate(path: &Path, format: Format) -> Result<ExitCode> {
    let text = read(path)?;
    let checked = vexil_engine::check(&text, format);
    let place = |l: &vexil_engine::Located| match l.line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    for w in &checked.warnings {
        crate::output::out!("{}: warning: {}", place(w), w.problem);
    }
    let n = checked.problems.len();
    if n == 0 {
        crate::output::out!(
            "{}: ok, {} flag{}",
            path.display(),
            checked.flags,
            if checked.flags == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for p in &checked.problems {
        crate::output::out!("{}: {}", place(p), p.problem);
    }
    crate::output::out!(
        "{}: {n} problem{}",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(1))
}

fn load_error(path: &Path, e: &LoadError) -> anyhow::Error {
    let lines: Vec<String> = e.problems().iter().map(|p| format!("\n  {p}")).collect();
    anyhow::anyhow!("invalid flag file {}:{}", path.display(), lines.concat())
}
