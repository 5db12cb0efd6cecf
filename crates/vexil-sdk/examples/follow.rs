//! Follows a local Vexil server and prints a flag's answer now and after
//! every change, with the follower's status as it moves.
//!
//! With the README's quick start running (`vexil serve` and the flag
//! `new-checkout`), create a server key and run:
//!
//! ```sh
//! vexil keys create --name sdk-example --scope server   # prints the key
//! cargo run -p vexil-sdk --example follow -- http://127.0.0.1:8080 vxs_… new-checkout
//! ```
//!
//! Then toggle the flag (`vexil flags toggle new-checkout on`) and watch
//! the answer change; stop the server and watch the status go `STALE`
//! while the last version keeps answering; start it again. The state is
//! cached in the system's temporary directory, so a restart of the example
//! while the server is down still answers. Ctrl-C ends it.

use std::time::Duration;

use vexil_sdk::{Client, Context};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let key = args
        .next()
        .or_else(|| std::env::var("VEXIL_SERVER_KEY").ok())
        .ok_or("usage: follow URL SERVER_KEY [FLAG] (or set VEXIL_SERVER_KEY)")?;
    let flag = args.next().unwrap_or_else(|| "new-checkout".to_owned());

    let client = Client::builder()
        .upstream(&url, &key)
        .cache_dir(std::env::temp_dir().join("vexil-sdk-example"))
        .build()?;
    if let Err(e) = client.wait_ready(Duration::from_secs(5)).await {
        eprintln!("not ready yet ({e}); answering from the cache or with defaults meanwhile");
    }

    let ctx = Context::new()
        .with_targeting_key("user-42")
        .with("email", "ada@example.com")
        .with("plan", "pro");
    show(&client, &flag, &ctx);
    // A weak handle: a listener holding the client would keep it alive.
    let (weak, listener_flag, listener_ctx) = (client.downgrade(), flag.clone(), ctx.clone());
    client.on_flag_change(&flag, move |changed| {
        if let Some(client) = weak.upgrade() {
            print!("version {} changed {:?}: ", changed.version, changed.flags);
            show(&client, &listener_flag, &listener_ctx);
        }
    });

    let mut state = client.watch();
    let mut last = state.borrow().status;
    println!("status {last}");
    loop {
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let s = state.borrow_and_update().clone();
                if s.status != last {
                    last = s.status;
                    let why = s.error.map(|e| format!(" ({e})")).unwrap_or_default();
                    println!("status {last}{why}");
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

fn show(client: &Client, flag: &str, ctx: &Context) {
    let d = client.bool_details(flag, ctx, false);
    println!(
        "{flag} = {} (variant {:?}, reason {}, version {:?}{})",
        d.value,
        d.variant,
        d.reason,
        d.version,
        d.error_code.map(|c| format!(", {c}")).unwrap_or_default()
    );
}
