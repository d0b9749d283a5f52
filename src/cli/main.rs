//! The `vigil` command line: serve, sim, demo, user add, token create, check.

#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use vigil::auth::{self, Role};
use vigil::config::Config;
use vigil::server::{shutdown_signal, Server};

mod sim;
use sim::SimArgs;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Real-time video supervision and NVR aggregation server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the stored data is: every command that touches it takes these.
#[derive(Args, Clone)]
struct Storage {
    /// Configuration file (TOML); see config/vigil.example.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (recordings, keys, and the SQLite database by default).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///var/lib/vigil/vigil.db (the default is vigil.db in the data directory) or
    /// postgres://USER:PASSWORD@HOST/DATABASE (a shared index for several nodes; docs/cluster.md).
    #[arg(long)]
    database_url: Option<String>,
}

impl Storage {
    fn load(&self) -> anyhow::Result<Config> {
        let mut cfg = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            cfg.database_url = Some(u.clone());
        }
        Ok(cfg)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        storage: Storage,
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// This node's name in a cluster sharing the database (docs/cluster.md); overrides
        /// `[cluster] node_name`.
        #[arg(long)]
        node_name: Option<String>,
        /// How other nodes and consoles reach this node, e.g. http://10.0.0.5:8080.
        #[arg(long)]
        advertise: Option<String>,
        /// Run the GB/T 28181 platform's SIP on this address (UDP and TCP), e.g. 0.0.0.0:5060; overrides
        /// `[gb28181] sip_listen`.
        #[arg(long)]
        sip_listen: Option<SocketAddr>,
    },
    /// Run simulated RTSP cameras at rtsp://ADDR/cam1 ... camN.
    Sim(SimArgs),
    /// Run the simulator and the server together on the embedded demo configuration.
    Demo {
        /// Address of the console.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Data directory of the demo.
        #[arg(long, default_value = "recordings/demo")]
        data_dir: PathBuf,
    },
    /// Check an evidence package offline: exit 0 when intact, 1 naming each altered, missing or added file.
    Verify {
        /// The package (zip) from `GET /api/v1/exports/{id}/download`.
        package: PathBuf,
        /// The expected signing key (hex, `public_key` of `GET /api/v1/signing-key`); without it only the
        /// package's integrity is checked, and a warning says so, with the key it was signed with.
        #[arg(long)]
        key: Option<String>,
        /// For a package exported through a link: the expected key of the server that countersigned it
        /// (its `GET /api/v1/signing-key`); the package must then be countersigned by it.
        #[arg(long)]
        countersign_key: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens for machine clients.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The nodes of a cluster sharing the database (docs/cluster.md).
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Check the stored data: the audit log's hash chain and the recordings against their index; exits
    /// non-zero when a check fails.
    Check {
        /// Make recordings and index agree: cut incomplete tails, re-derive rows from files, index
        /// unindexed files (the audit log is never repaired).
        #[arg(long)]
        repair: bool,
        /// Replace the segment index with one rebuilt from the files alone (server stopped).
        #[arg(long, conflicts_with = "repair")]
        rebuild: bool,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log's keyed hash chain: exit 0 when intact, 1 naming the first broken row.
    Verify {
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Hand a node's cameras over to the other nodes (before maintenance); it records none until it
    /// starts again.
    Drain {
        /// The node's name (`--node-name`).
        name: String,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, value_parser = ["admin", "supervisor", "investigator", "integrator"])]
        role: String,
        /// Region code granted (with its subtree); repeat for several. An admin without one is global.
        #[arg(long = "region")]
        regions: Vec<String>,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        storage: Storage,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token and print it once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "supervisor", "investigator", "integrator"])]
        role: String,
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Days until the token expires; never when absent.
        #[arg(long)]
        expires_days: Option<u32>,
        #[command(flatten)]
        storage: Storage,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn,rsipstack=warn")
    });
    // Colours for a terminal only: a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

async fn open_db(storage: &Storage) -> anyhow::Result<vigil::db::Pool> {
    let cfg = storage.load()?;
    vigil::private::prepare_data_dir(&cfg.data_dir)
        .with_context(|| format!("preparing {}", cfg.data_dir.display()))?;
    Ok(vigil::db::connect(&cfg.database_url()).await?)
}

/// The audit row of a change made on the command line (actor `cli`: whoever runs it has the data directory).
async fn cli_audit(
    storage: &Storage,
    pool: &vigil::db::Pool,
    action: &str,
    target: String,
    region: Option<&String>,
    detail: String,
) -> anyhow::Result<()> {
    let entry = vigil::audit::Entry {
        actor: "cli".into(),
        role: None,
        action: action.into(),
        target: Some(target),
        region_code: region.cloned(),
        status: 0,
        client: None,
        detail: Some(detail),
    };
    vigil::audit::Log::open(pool.clone(), &storage.load()?.data_dir)
        .await?
        .append(&entry)
        .await?;
    Ok(())
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    Role::parse(s).with_context(|| format!("unknown role {s}"))
}

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist (see vigil::memory).
    let tuned = vigil::memory::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(tuned))
}

async fn run(allocator_tuned: bool) -> anyhow::Result<()> {
    init_tracing();
    if !allocator_tuned {
        tracing::debug!("the allocator keeps its default mmap threshold (not glibc, or refused)");
    }
    // Evidence, keys and the database are this user's alone (see vigil::private).
    vigil::private::restrict_new_files();
    match Cli::parse().command {
        Command::Serve {
            storage,
            listen,
            node_name,
            advertise,
            sip_listen,
        } => {
            let mut cfg = storage.load()?;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if node_name.is_some() {
                cfg.cluster.node_name = node_name;
            }
            if advertise.is_some() {
                cfg.cluster.advertise = advertise;
            }
            if sip_listen.is_some() {
                cfg.gb28181.sip_listen = sip_listen;
            }
            cfg.cluster.validate().map_err(anyhow::Error::msg)?;
            cfg.edge.validate().map_err(anyhow::Error::msg)?;
            if cfg.gb28181.sip_listen.is_some() {
                cfg.gb28181.validate().map_err(anyhow::Error::msg)?;
            }
            let server = Server::bind(cfg).await?;
            tracing::info!(addr = %server.local_addr()?, "serving");
            server.run(shutdown_signal()).await
        }
        Command::Sim(args) => sim::run(args).await,
        Command::Demo { listen, data_dir } => sim::demo(listen, data_dir).await,
        Command::Check {
            repair,
            rebuild,
            storage,
        } => check(&storage, repair, rebuild).await,
        Command::Verify {
            package,
            key,
            countersign_key,
        } => verify(&package, key.as_deref(), countersign_key.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { storage },
        } => audit_verify(&storage).await,
        Command::Node {
            command: NodeCommand::Drain { name, storage },
        } => node_drain(&storage, &name).await,
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    regions,
                    password_stdin: _,
                    storage,
                },
        } => user_add(&storage, &name, &role, &regions).await,
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    role,
                    regions,
                    expires_days,
                    storage,
                },
        } => token_create(&storage, &name, &role, &regions, expires_days).await,
    }
}

/// `vigil audit verify`: exits 1 when the chain is broken.
async fn audit_verify(storage: &Storage) -> anyhow::Result<()> {
    let cfg = storage.load()?;
    let pool = open_db(storage).await?;
    let log = vigil::audit::Log::open_to_verify(pool, &cfg.data_dir).await?;
    if vigil::check::audit_chain(&log).await? {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

/// `vigil node drain NAME`: the node gives its leases back at its next round (each camera stopped first),
/// and the other nodes take them.
async fn node_drain(storage: &Storage, name: &str) -> anyhow::Result<()> {
    let pool = open_db(storage).await?;
    if !vigil::cluster::store::set_draining(&pool, name, true).await? {
        bail!("no node named {name:?} in this database");
    }
    cli_audit(
        storage,
        &pool,
        "node.drain",
        format!("/nodes/{name}"),
        None,
        format!("node {name} drains"),
    )
    .await?;
    println!("node {name} drains: its cameras move to the other nodes");
    Ok(())
}

/// `vigil user add`: the password is read from standard input.
async fn user_add(
    storage: &Storage,
    name: &str,
    role: &str,
    regions: &[String],
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.len() < 8 {
        bail!("the password must have at least 8 characters");
    }
    let pool = open_db(storage).await?;
    let user = auth::create_user(&pool, name, password, role, regions).await?;
    let detail = format!("{} ({})", user.username, user.role);
    cli_audit(
        storage,
        &pool,
        "user.create",
        format!("/users/{}", user.id),
        regions.first(),
        detail,
    )
    .await?;
    println!(
        "user {} ({}) added with id {}",
        user.username, user.role, user.id
    );
    Ok(())
}

/// `vigil token create`: prints the token's secret, shown this once.
async fn token_create(
    storage: &Storage,
    name: &str,
    role: &str,
    regions: &[String],
    expires_days: Option<u32>,
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let pool = open_db(storage).await?;
    let expires = expires_days.map(|d| vigil::db::now_ms() + i64::from(d) * 86_400_000);
    let (id, secret) =
        auth::create_token_by(&pool, name, role, regions, expires, Some("cli")).await?;
    let detail = format!("{name} ({})", role.as_str());
    cli_audit(
        storage,
        &pool,
        "token.create",
        format!("/tokens/{id}"),
        regions.first(),
        detail,
    )
    .await?;
    println!("{secret}");
    Ok(())
}

/// `vigil check [--repair] [--rebuild]`.
async fn check(storage: &Storage, repair: bool, rebuild: bool) -> anyhow::Result<()> {
    let cfg = storage.load()?;
    let pool = open_db(storage).await?;
    if rebuild {
        let node = cfg.cluster.node_name.as_deref();
        let n = vigil::record::check::rebuild(&pool, &cfg.data_dir, node).await?;
        println!("index rebuilt from the files: {n} segments");
        return Ok(());
    }
    let opts = vigil::check::Options {
        repair,
        node: cfg.cluster.node_name.clone(),
    };
    if vigil::check::run(&pool, &cfg.data_dir, opts).await? {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

/// `vigil verify PACKAGE [--key HEX] [--countersign-key HEX]`.
fn verify(
    package: &std::path::Path,
    key: Option<&str>,
    countersign_key: Option<&str>,
) -> anyhow::Result<()> {
    let r = vigil::cases::verify::verify_countersigned(package, key, countersign_key);
    for p in &r.problems {
        println!("FAILED {}: {}", p.file, p.message);
    }
    if !r.problems.is_empty() {
        println!(
            "{}: NOT intact ({} problem(s))",
            package.display(),
            r.problems.len()
        );
        std::process::exit(1);
    }
    println!(
        "{}: intact; case {}, {} file(s) match the signed manifest",
        package.display(),
        r.case_no.as_deref().unwrap_or("?"),
        r.files_checked
    );
    if let Some(k) = &r.public_key {
        println!("signed by ed25519 key {k}");
    }
    if let Some(k) = &r.countersigned_by {
        println!(
            "countersigned by ed25519 key {k}, for footage held by {}",
            r.holder.as_deref().unwrap_or("?")
        );
    }
    if !r.key_checked {
        let warning = "WARNING: no --key given: only the package's integrity was checked, not who \
                       signed it (anyone can sign a package with a key of their own). Compare the key \
                       above with the public_key of GET /api/v1/signing-key of the server that made it, \
                       or run again with --key.";
        println!("{warning}");
        eprintln!("{warning}");
    }
    Ok(())
}
