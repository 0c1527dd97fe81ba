//! `bench`: the benchmarks behind the README's Performance section. `bench/run.sh` builds everything in release
//! and runs `bench all`, which writes `bench/results.md` and `bench/token-access.svg`.

mod bulk_create;
mod propagation;
mod report;
mod scale;
mod sim_products;
mod stack;
mod storm;
mod token_access;
mod wrk;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Benchmarks of oauth-backend and api-backend against highlevel-sim. Every throughput figure is a ratio to a
/// trivial actix handler measured in the same run. Needs wrk, PostgreSQL (TEST_DATABASE_URL, default
/// postgres://postgres@127.0.0.1:5432/test; each run uses a schema of its own) and the release binaries next
/// to this one.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Cli {
    /// Where results.md and the chart are written.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
    /// Seconds per wrk run.
    #[arg(long, env = "BENCH_SECONDS", default_value_t = 5)]
    seconds: u32,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Everything below, in order (about 10 minutes on 2 cores).
    All {
        /// Installations in the scale run.
        #[arg(long, default_value_t = 100_000)]
        installations: usize,
    },
    /// Token-access at 1/16/64/256 connections, cached and uncached, and each service's memory.
    TokenAccess,
    /// N installations × M concurrent callers after every token was rejected, two instances, PostgreSQL.
    Storm {
        #[arg(long, default_value_t = 50)]
        installations: usize,
        #[arg(long, default_value_t = 200)]
        callers: usize,
    },
    /// Bulk product creation against HighLevel's rate-limit floor: 1 and 10 locations; 2 and 4 replicas on one
    /// PostgreSQL database sharing 1 location; 10 locations through 4 replicas.
    Bulk {
        #[arg(long, default_value_t = 300)]
        products: usize,
    },
    /// Installations all falling due at once, renewed by two replicas' refreshers.
    Scale {
        #[arg(long, default_value_t = 100_000)]
        installations: usize,
        /// Refreshes each replica runs at once (REFRESHER_CONCURRENCY).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// The simulator's own GET /products/.
    Sim,
    /// Two replicas: time from a refresh or an uninstall on one to the other honouring it.
    Propagation {
        /// Refreshes, and uninstalls, measured.
        #[arg(long, default_value_t = 1000)]
        changes: usize,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut report = report::Report::new(cli.out.clone());
    let s = cli.seconds;
    match cli.what {
        What::All { installations } => {
            token_access::run(&mut report, s).await?;
            storm::run(&mut report, 50, 200).await?;
            scale::run(
                &mut report,
                scale::Options {
                    installations,
                    concurrency: 32,
                    seconds: s,
                },
            )
            .await?;
            bulk_create::run(&mut report, 300).await?;
            sim_products::run(&mut report, s).await?;
            propagation::run(&mut report, 1000).await?;
        }
        What::TokenAccess => token_access::run(&mut report, s).await?,
        What::Storm {
            installations,
            callers,
        } => storm::run(&mut report, installations, callers).await?,
        What::Bulk { products } => bulk_create::run(&mut report, products).await?,
        What::Scale {
            installations,
            concurrency,
        } => {
            scale::run(
                &mut report,
                scale::Options {
                    installations,
                    concurrency,
                    seconds: s,
                },
            )
            .await?
        }
        What::Sim => sim_products::run(&mut report, s).await?,
        What::Propagation { changes } => propagation::run(&mut report, changes).await?,
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let path = report.write(&command)?;
    println!("\nwritten: {}", path.display());
    Ok(())
}
