//! The admin commands of the CLI (`flags`, `keys`, `import`, `export`):
//! thin clients of a running server's admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Where the server is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Remote {
    /// Server URL.
    #[arg(
        long,
        env = "VEXIL_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub(crate) url: String,
    /// API key (falls back to VEXIL_ADMIN_KEY).
    #[arg(long, env = "VEXIL_KEY", hide_env_values = true, global = true)]
    pub(crate) key: Option<String>,
    /// Project key.
    #[arg(long, env = "VEXIL_PROJECT", default_value = "default", global = true)]
    pub(crate) project: String,
    /// Environment key [default: `development`, or the project's only
    /// environment, as with a flag file].
    #[arg(long = "env", env = "VEXIL_ENV", global = true)]
    pub(crate) environment: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FlagsCommand {
    /// List flags (key, version, enabled).
    List {
        /// Only keys containing this text.
        #[arg(long)]
        query: Option<String>,
        /// Only flags with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// List archived flags instead of live ones.
        #[arg(long)]
        archived: bool,
    },
    /// Print one flag as JSON.
    Get {
        /// Flag key.
        flag: String,
    },
    /// Create or replace a flag from a JSON or YAML definition.
    Set {
        /// Flag key.
        flag: String,
        /// File with the flag definition (`-` for standard input).
        #[arg(long, short)]
        file: PathBuf,
        /// Only replace if the flag is still at this version (default: the
        /// version read just before writing).
        #[arg(long)]
        if_version: Option<i64>,
    },
    /// Turn a flag on or off.
    Toggle {
        /// Flag key.
        flag: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Delete a flag.
    Delete {
        /// Flag key.
        flag: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; its secret is printed once.
    Create {
        /// A name for the key, recorded as the actor of its changes.
        #[arg(long)]
        name: String,
        /// What the key may do: `admin` (the admin API), `server` (read one
        /// environment's rules: edges, server SDKs) or `client` (evaluated
        /// values of one environment: browsers, mobile).
        #[arg(long, value_parser = ["admin", "server", "client"])]
        scope: String,
        /// For server and client keys (and project-limited admin keys): use
        /// --project / --env.
        #[arg(long)]
        for_environment: bool,
        /// Limit an admin key to --project.
        #[arg(long)]
        for_project: bool,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id, as `vexil keys list` shows it.
        id: i64,
    },
}

/// The environment used when none is given, if the project has it.
const DEFAULT_ENV: &str = "development";

struct Client {
    http: reqwest::Client,
    remote: Remote,
    key: String,
    /// The environment the commands act on, once resolved.
    env: String,
}

impl Client {
    fn new(remote: Remote, fallback_key: Option<String>) -> Result<Self> {
        let key = remote
            .key
            .clone()
            .or(fallback_key)
            .context("no API key: pass --key or set VEXIL_KEY (or VEXIL_ADMIN_KEY)")?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let env = remote
            .environment
            .clone()
            .unwrap_or_else(|| DEFAULT_ENV.to_owned());
        Ok(Client {
            http,
            remote,
            key,
            env,
        })
    }

    fn env_path(&self, rest: &str) -> String {
        format!(
            "/api/v1/projects/{}/environments/{}{rest}",
            vexil_protocol::url::percent_encode(&self.remote.project),
            vexil_protocol::url::percent_encode(&self.env),
        )
    }

    /// Checks the project and picks the environment: the one given, else
    /// `development`, else the project's only one (a flag file's
    /// `default`). A missing project is reported as such, not as a missing
    /// environment.
    async fn resolve_env(&mut self) -> Result<()> {
        let path = format!(
            "/api/v1/projects/{}/environments",
            vexil_protocol::url::percent_encode(&self.remote.project)
        );
        let (_, _, list) = self.send(Method::GET, &path, None, &[]).await?;
        let keys: Vec<&str> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["key"].as_str())
            .collect();
        let project = &self.remote.project;
        let env = match &self.remote.environment {
            Some(e) if keys.contains(&e.as_str()) => e.clone(),
            Some(e) => bail!(
                "environment `{e}` not found in project `{project}` (it has: {})",
                keys.join(", ")
            ),
            None if keys.contains(&DEFAULT_ENV) => DEFAULT_ENV.to_owned(),
            None if keys.len() == 1 => keys[0].to_owned(),
            None => bail!(
                "project `{project}` has no environment `{DEFAULT_ENV}`; choose one with --env (it has: {})",
                keys.join(", ")
            ),
        };
        self.env = env;
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<reqwest::Body>,
        headers: &[(&str, String)],
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value)> {
        let url = format!("{}{path}", self.remote.url.trim_end_matches('/'));
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        for (h, v) in headers {
            req = req.header(*h, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let mut msg = format!(
                "{} ({}, {})",
                value["message"].as_str().unwrap_or("request failed"),
                value["code"].as_str().unwrap_or("error"),
                status.as_u16()
            );
            if let Some(problems) = value["problems"].as_array() {
                for p in problems {
                    msg.push_str(&format!(
                        "\n  {}: {}",
                        p["pointer"].as_str().unwrap_or(""),
                        p["message"].as_str().unwrap_or("")
                    ));
                }
            }
            bail!(msg);
        }
        Ok((status, headers, value))
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn read_input(path: &PathBuf) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn flags(
    remote: Remote,
    fallback_key: Option<String>,
    cmd: FlagsCommand,
) -> Result<ExitCode> {
    let mut c = Client::new(remote, fallback_key)?;
    runtime()?.block_on(async move {
        c.resolve_env().await?;
        match cmd {
            FlagsCommand::List {
                query,
                tag,
                archived,
            } => {
                let mut after: Option<String> = None;
                loop {
                    let mut q = vec![format!("limit=500&archived={archived}")];
                    if let Some(v) = &query {
                        q.push(format!("q={}", vexil_protocol::url::percent_encode(v)));
                    }
                    if let Some(v) = &tag {
                        q.push(format!("tag={}", vexil_protocol::url::percent_encode(v)));
                    }
                    if let Some(a) = &after {
                        q.push(format!("after={}", vexil_protocol::url::percent_encode(a)));
                    }
                    let (_, _, page) = c
                        .send(
                            Method::GET,
                            &c.env_path(&format!("/flags?{}", q.join("&"))),
                            None,
                            &[],
                        )
                        .await?;
                    for item in page["items"].as_array().into_iter().flatten() {
                        crate::output::out!(
                            "{}\tversion {}\t{}",
                            item["key"].as_str().unwrap_or(""),
                            item["version"],
                            if item["definition"]["enabled"] == json!(false) {
                                "off"
                            } else {
                                "on"
                            }
                        );
                    }
                    match page["next"].as_str() {
                        Some(n) => after = Some(n.to_owned()),
                        None => break,
                    }
                }
            }
            FlagsCommand::Get { flag: key } => {
                let (_, _, item) = c
                    .send(
                        Method::GET,
                        &c.env_path(&format!("/flags/{key}")),
                        None,
                        &[],
                    )
                    .await?;
                crate::output::out!("{}", pretty(&item));
            }
            FlagsCommand::Set {
                flag: key,
                file,
                if_version,
            } => {
                let text = read_input(&file)?;
                let def: Value = if text.trim_start().starts_with('{') {
                    serde_json::from_str(&text).context("flag definition is not valid JSON")?
                } else {
                    serde_yaml_ng::from_str(&text).context("flag definition is not valid YAML")?
                };
                let path = c.env_path(&format!("/flags/{key}"));
                let version = match if_version {
                    Some(v) => Some(v),
                    None => match c.send(Method::GET, &path, None, &[]).await {
                        Ok((_, _, item)) => item["version"].as_i64(),
                        Err(e) if e.to_string().contains("(not_found,") => None,
                        Err(e) => return Err(e),
                    },
                };
                let header = match version {
                    Some(v) => ("if-match", format!("\"{v}\"")),
                    None => ("if-none-match", "*".to_owned()),
                };
                let (_, _, item) = c
                    .send(Method::PUT, &path, Some(def.to_string().into()), &[header])
                    .await?;
                crate::output::out!("{key}: version {}", item["version"]);
            }
            FlagsCommand::Toggle { flag: key, state } => {
                let body = json!({"enabled": state == "on"}).to_string();
                let (_, _, item) = c
                    .send(
                        Method::POST,
                        &c.env_path(&format!("/flags/{key}/toggle")),
                        Some(body.into()),
                        &[],
                    )
                    .await?;
                crate::output::out!("{key}: {state}, version {}", item["version"]);
            }
            FlagsCommand::Delete { flag: key } => {
                c.send(
                    Method::DELETE,
                    &c.env_path(&format!("/flags/{key}")),
                    None,
                    &[],
                )
                .await?;
                crate::output::out!("{key}: deleted");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn keys(
    remote: Remote,
    fallback_key: Option<String>,
    cmd: KeysCommand,
) -> Result<ExitCode> {
    let mut c = Client::new(remote, fallback_key)?;
    runtime()?.block_on(async move {
        match cmd {
            KeysCommand::Create {
                name,
                scope,
                for_environment,
                for_project,
            } => {
                let mut body = json!({"name": name, "scope": scope});
                if for_environment || scope != "admin" {
                    c.resolve_env().await?;
                    body["project"] = json!(c.remote.project);
                    body["environment"] = json!(c.env);
                } else if for_project {
                    body["project"] = json!(c.remote.project);
                }
                let (_, _, key) = c
                    .send(
                        Method::POST,
                        "/api/v1/keys",
                        Some(body.to_string().into()),
                        &[],
                    )
                    .await?;
                eprintln!("key {} created; its secret is shown once:", key["id"]);
                crate::output::out!("{}", key["secret"].as_str().unwrap_or(""));
            }
            KeysCommand::List => {
                let (_, _, keys) = c.send(Method::GET, "/api/v1/keys", None, &[]).await?;
                for k in keys["items"].as_array().into_iter().flatten() {
                    crate::output::out!(
                        "{}\t{}\t{}\t{}…\t{}{}",
                        k["id"],
                        k["name"].as_str().unwrap_or(""),
                        k["scope"].as_str().unwrap_or(""),
                        k["prefix"].as_str().unwrap_or(""),
                        match (k["project"].as_str(), k["environment"].as_str()) {
                            (Some(p), Some(e)) => format!("{p}/{e}"),
                            (Some(p), None) => p.to_owned(),
                            _ => "all projects".to_owned(),
                        },
                        if k["revokedAt"].is_null() {
                            ""
                        } else {
                            "\trevoked"
                        }
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                c.send(
                    Method::POST,
                    &format!("/api/v1/keys/{id}/revoke"),
                    None,
                    &[],
                )
                .await?;
                crate::output::out!("key {id} revoked");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn import(
    remote: Remote,
    fallback_key: Option<String>,
    file: PathBuf,
    dry_run: bool,
    replace: bool,
) -> Result<ExitCode> {
    let mut c = Client::new(remote, fallback_key)?;
    let text = read_input(&file)?;
    runtime()?.block_on(async move {
        c.resolve_env().await?;
        let path = c.env_path(&format!(
            "/import?dryRun={dry_run}&mode={}",
            if replace { "replace" } else { "merge" }
        ));
        let (_, _, plan) = c.send(Method::POST, &path, Some(text.into()), &[]).await?;
        for kind in ["flags", "segments"] {
            for what in ["created", "updated", "deleted"] {
                for key in plan[kind][what].as_array().into_iter().flatten() {
                    crate::output::out!(
                        "{} {} {}",
                        if dry_run {
                            format!("would be {what}:")
                        } else {
                            format!("{what}:")
                        },
                        &kind[..kind.len() - 1],
                        key.as_str().unwrap_or("")
                    );
                }
            }
        }
        match plan["version"].as_i64() {
            Some(v) => crate::output::out!("environment version {v}"),
            None => crate::output::out!("dry run: nothing changed"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn export(
    remote: Remote,
    fallback_key: Option<String>,
    output: Option<PathBuf>,
) -> Result<ExitCode> {
    let mut c = Client::new(remote, fallback_key)?;
    runtime()?.block_on(async move {
        c.resolve_env().await?;
        let (_, headers, doc) = c
            .send(Method::GET, &c.env_path("/export"), None, &[])
            .await?;
        let text = pretty(&doc);
        match output {
            Some(path) => {
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!(
                    "exported version {} to {}",
                    headers
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("?")
                        .trim_matches('"'),
                    path.display()
                );
            }
            None => crate::output::out!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    })
}
