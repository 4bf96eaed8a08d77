//! `froyo facts [--on SEL] [FACT] [--json]`: collect facts from targets and print them.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::{Map, Value as Json};

use super::{eprint_diagnostics, write_stdout};
use crate::diag::{Code, Diagnostic};
use crate::error::Error;
use crate::facts::{Facts, KNOWN, Sessions};
use crate::inventory::Inventory;
use crate::selector::Selector;
use crate::transport::Connector;

/// One target's facts, or why they could not be had.
type HostFacts = Result<Map<String, Json>, crate::transport::TargetError>;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FactsArgs {
    #[command(subcommand)]
    verb: Option<FactsVerb>,
    #[command(flatten)]
    opts: FactsOpts,
}

#[derive(Debug, clap::Subcommand)]
enum FactsVerb {
    /// The same as `froyo facts` (the original design's spelling: `facts collect --selector SEL`).
    Collect(FactsOpts),
}

#[derive(Debug, Args)]
pub struct FactsOpts {
    /// A fact (`os.basic`) or a field of one (`os.basic.distro`); all facts by default.
    fact: Option<String>,
    /// Targets to ask (default `local`).
    #[arg(
        long,
        visible_alias = "selector",
        value_name = "SELECTOR",
        default_value = "name=local"
    )]
    on: String,
    /// Print JSON (`{target: {fact: value}}`) on stdout.
    #[arg(long)]
    json: bool,
    /// Run the runner as root through `sudo -n`.
    #[arg(long = "become")]
    r#become: bool,
    /// Targets asked at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub fn run(args: &FactsArgs) -> Result<ExitCode, Error> {
    let args = match &args.verb {
        Some(FactsVerb::Collect(opts)) => opts,
        None => &args.opts,
    };
    let project = super::cwd_project()?;
    let inventory = Inventory::load(&project.root, &Map::new())?;
    let sel = Selector::parse(&args.on).map_err(|e| Error::Usage(format!("--on: {e}")))?;
    let names: Vec<String> = inventory
        .select(&sel)
        .into_iter()
        .map(|t| t.name.clone())
        .collect();
    if names.is_empty() {
        eprint_diagnostics(&[Diagnostic::new(
            Code::NoHosts,
            format!("`--on {}` selects no target", args.on),
        )]);
        return Ok(ExitCode::from(1));
    }
    let (wanted, path) = match &args.fact {
        None => (KNOWN.to_vec(), Vec::new()),
        Some(f) => {
            let Some(fact) = KNOWN
                .iter()
                .find(|k| f == *k || f.starts_with(&format!("{k}.")))
            else {
                let hint = crate::util::did_you_mean(f, KNOWN.iter().copied())
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                eprint_diagnostics(
                    &[Diagnostic::new(Code::FactUnknown, format!("no fact `{f}`"))
                        .help(format!("{hint}facts: {}", KNOWN.join(", ")))],
                );
                return Ok(ExitCode::from(1));
            };
            let rest: Vec<String> = f[fact.len()..]
                .split('.')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            (vec![*fact], rest)
        }
    };
    let runtime = super::runtime()?;
    let sessions = Arc::new(Sessions::new(
        Connector::for_project(&project),
        inventory,
        args.r#become,
    ));
    let facts = Arc::new(Facts::new(sessions.clone(), runtime.handle().clone()));
    let limit = Arc::new(tokio::sync::Semaphore::new(args.parallelism.max(1)));
    let results: Vec<(String, HostFacts)> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for name in &names {
            let (facts, limit, name, wanted) =
                (facts.clone(), limit.clone(), name.clone(), wanted.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire().await;
                let r = facts.collect(&name, &wanted).await;
                (name, r)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            if let Ok(r) = t.await {
                out.push(r);
            }
        }
        sessions.close_all().await;
        out
    });
    let mut failed = Vec::new();
    let mut by_host = Map::new();
    for (name, r) in results {
        match r {
            Ok(mut m) => {
                if let Some(fact) = args.fact.as_deref().and(wanted.first())
                    && !path.is_empty()
                {
                    let mut v = m.remove(*fact).unwrap_or(Json::Null);
                    for p in &path {
                        v = v.get(p).cloned().unwrap_or(Json::Null);
                    }
                    let mut one = Map::new();
                    one.insert(args.fact.clone().unwrap_or_default(), v);
                    m = one;
                }
                by_host.insert(name, Json::Object(m));
            }
            Err(e) => failed.push(e.to_diagnostic()),
        }
    }
    if args.json {
        write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&Json::Object(by_host)).unwrap_or_default()
        ));
    } else {
        write_stdout(&human(&by_host, args.fact.is_some()));
    }
    eprint_diagnostics(&failed);
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn human(by_host: &Map<String, Json>, full: bool) -> String {
    let mut out = String::new();
    for (host, facts) in by_host {
        let _ = writeln!(out, "{host}");
        let facts = facts.as_object().cloned().unwrap_or_default();
        // Known facts in their documented order, then anything else.
        let mut names: Vec<&String> = facts.keys().collect();
        names.sort_by_key(|k| KNOWN.iter().position(|f| f == k).unwrap_or(KNOWN.len()));
        for (fact, v) in names.into_iter().map(|k| (k, &facts[k])) {
            match v {
                Json::Object(m) if fact == "pkg.manifest" && !full => {
                    let _ = writeln!(
                        out,
                        "  {fact}: {} packages (froyo facts pkg.manifest to list them)",
                        m.len()
                    );
                }
                Json::Object(m) => {
                    let _ = writeln!(out, "  {fact}:");
                    for (k, x) in m {
                        let _ = writeln!(out, "    {k}: {}", scalar(x));
                    }
                }
                Json::Array(a) => {
                    let _ = writeln!(out, "  {fact}:");
                    for x in a {
                        let _ = writeln!(out, "    - {}", scalar(x));
                    }
                }
                other => {
                    let _ = writeln!(out, "  {fact}: {}", scalar(other));
                }
            }
        }
    }
    out
}

fn scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
