//! Standard output of the commands: `out!`, which ends quietly on a
//! closed pipe.

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
