//! What every scenario starts from: a simulator without rate limits, installs through the real OAuth flow,
//! service tokens, the service binaries as child processes (so each one's memory can be read), temp folders.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SECRET: &str = "bench-secret-bench-secret-bench-secret-0";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(512)
        .build()
        .expect("an HTTP client")
}

/// A simulator with no rate limit (the scenario measures us, not HighLevel's limits) and tokens living `ttl`.
pub async fn sim(workers: usize, ttl: Option<i64>) -> anyhow::Result<highlevel_sim::RunningSim> {
    let mut config = highlevel_sim::SimConfig {
        port: 0,
        workers,
        rate_burst: u32::MAX,
        rate_daily: u32::MAX,
        ..Default::default()
    };
    if let Some(ttl) = ttl {
        config.access_token_ttl = ttl;
    }
    Ok(highlevel_sim::spawn(config).await?)
}

/// Installs the app on one location through oauth-backend's real flow (install link, consent, callback) and
/// answers the installation id.
pub async fn install_location(
    http: &reqwest::Client,
    oauth_url: &str,
    location: &str,
) -> anyhow::Result<String> {
    let location_header = |res: &reqwest::Response| -> anyhow::Result<String> {
        Ok(res
            .headers()
            .get("location")
            .context("a redirect")?
            .to_str()?
            .to_owned())
    };
    let res = http
        .get(format!(
            "{oauth_url}/oauth/install?user_type=Location&sim_user_type=Location&sim_location_id={location}"
        ))
        .send()
        .await?;
    let res = http.get(location_header(&res)?).send().await?;
    let back = url::Url::parse(&location_header(&res)?)?;
    let res = http
        .get(format!(
            "{oauth_url}/oauth/callback?{}",
            back.query().unwrap_or_default()
        ))
        .send()
        .await?;
    let done = url::Url::parse(&location_header(&res)?)?;
    done.query_pairs()
        .find(|(k, _)| k == "installation_id")
        .map(|(_, v)| v.into_owned())
        .context("the callback's redirect names the installation")
}

/// A service token for `audience` (oauth-backend or api-backend), signed with the bench's shared secret.
pub fn service_token(audience: &str) -> String {
    service_common::ServiceAuth::for_audiences(&SECRET.to_owned().into(), &[audience])
        .issue("bench", 3600, None)
        .expect("a service token")
}

/// A folder of this run's own, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir)
    }

    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}/{name}.db", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A service's release binary (next to this executable) running as a child process, killed when dropped.
pub struct Service(service_common::testing::ChildService);

impl Service {
    /// Starts `target/<profile>/<binary>` with `env` on a free port and waits for `/healthz`. Its log goes to
    /// `<log_dir>/<binary>.log`.
    pub async fn start(
        binary: &str,
        env: &[(&str, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Service> {
        let exe = std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .join(binary);
        anyhow::ensure!(
            exe.exists(),
            "{} is missing: build it first (bench/run.sh builds every binary)",
            exe.display()
        );
        let log = std::fs::File::create(log_dir.join(format!("{binary}.log")))?;
        let mut env = env.to_vec();
        // `BENCH_WRAP=<folder>`: each service runs under a wrapper script `<folder>/<binary>` instead (one that
        // execs `heaptrack` or `perf record` on the real binary, whose path it finds in `BENCH_REAL_EXE`).
        let exe = match std::env::var_os("BENCH_WRAP") {
            Some(dir) => {
                env.push(("BENCH_REAL_EXE", exe.display().to_string()));
                Path::new(&dir).join(binary)
            }
            None => exe,
        };
        env.push(("RUST_LOG", "warn".to_owned()));
        service_common::testing::ChildService::start(&exe, &env, Some(log))
            .await
            .map(Service)
            .map_err(|e| anyhow::anyhow!("{e}; see {}/{binary}.log", log_dir.display()))
    }

    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// Resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.0.pid())
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }
}

/// `VmRSS` of a process, in MiB (0 where /proc is not there).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a process's resident memory every 100 ms until `stop` flips; answers the highest sample.
pub fn sample_peak_rss(
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<f64> {
    tokio::spawn(async move {
        let mut peak = 0f64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_mib(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    })
}

/// CPU time of every thread of a process so far (user + system, in clock ticks; 0 where /proc is not there).
pub fn cpu_ticks(pid: u32) -> u64 {
    // /proc/<pid>/stat's utime and stime already add up every thread of the process.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            Some(fields.iter().sum())
        })
        .unwrap_or(0)
}

/// Clock ticks per second, the unit of /proc's CPU times (`getconf CLK_TCK`: 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;
