//! For tests. Databases: a SQLite file in a temporary folder, or a fresh schema in the PostgreSQL test database
//! (`TEST_DATABASE_URL`), so tests run in parallel in one database; schemas are dropped at the end. Logs: every
//! line the process writes, captured ([`CapturedLogs`]).

use diesel::{connection::SimpleConnection, Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once on SQLite and once on PostgreSQL: `both_backends!(name, …)` for
/// `async fn name(backend: Backend)` functions of the current module.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::testing::Backend::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                super::$name($crate::testing::Backend::Postgres).await
            }
        }
    )*};
}

pub fn pg_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A temporary folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{prefix}-{:032x}", rand::random::<u128>()));
        std::fs::create_dir_all(&p).expect("create a temporary folder");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    pub sqlite_path: Option<std::path::PathBuf>,
    /// (server, schema) to drop at the end.
    schema: Option<(String, String)>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("svc-test");
                let path = dir.0.join("test.db");
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    sqlite_path: Some(path),
                    schema: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => TestDb::postgres_at(&pg_base_url()),
        }
    }

    /// A fresh schema in the PostgreSQL database at `base` (the shared test server, or a drill's own).
    pub fn postgres_at(base: &str) -> TestDb {
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let mut c = PgConnection::establish(base)
            .unwrap_or_else(|e| panic!("PostgreSQL test database unreachable ({base}): {e}"));
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        TestDb {
            url: format!("{base}{sep}options=-csearch_path%3D{schema}"),
            backend: Backend::Postgres,
            sqlite_path: None,
            schema: Some((base.to_owned(), schema)),
            _dir: None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.schema {
            if let Ok(mut c) = PgConnection::establish(base) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
    }
}

/// Starts a service binary listening on `port`, sends it SIGTERM once it accepts connections, and asserts it
/// exits successfully within 5 s.
pub fn assert_stops_on_sigterm(mut cmd: std::process::Command, port: u16) {
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the service");
    let up = Instant::now();
    // Ready means answering HTTP: the socket is bound before the server's signal handlers are in place.
    let healthy = || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut head = [0u8; 12];
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_ok()
            && s.read_exact(&mut head).is_ok()
            && head.ends_with(b"200")
    };
    while !healthy() {
        if up.elapsed() > Duration::from_secs(30) || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("the service did not start listening on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if asked.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("still running 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

/// A free TCP port on 127.0.0.1 (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A PostgreSQL server of a test's own (`initdb` into a temporary folder, its own port), for drills that stop
/// and start the database: never the machine's shared server, which other tests use. Stopped when dropped.
pub struct OwnPostgres {
    pub port: u16,
    dir: TempDir,
    bin: std::path::PathBuf,
}

impl OwnPostgres {
    /// Creates and starts the server; panics with the reason if PostgreSQL's programs are not installed.
    pub fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .find(|p| p.join("initdb").exists())
            })
            .expect(
                "PostgreSQL's server programs (initdb, pg_ctl) under /usr/lib/postgresql/*/bin",
            );
        let dir = TempDir::new("own-pg");
        let pg = OwnPostgres {
            port: free_port(),
            dir,
            bin,
        };
        // PostgreSQL refuses to run as root: run its programs as `postgres` then.
        if is_root() {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir.0)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the drill's data folder to postgres failed");
        }
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        pg.pg_ctl_start();
        pg
    }

    fn data(&self) -> String {
        self.dir.0.join("data").display().to_string()
    }

    /// One of PostgreSQL's programs, run as `postgres` when we are root (PostgreSQL refuses root).
    fn command(&self, program: &str) -> std::process::Command {
        let exe = self.bin.join(program);
        if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let (data, log) = (self.data(), self.dir.0.join("pg.log").display().to_string());
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.0.display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &opts, "-w", "start"],
        );
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`immediate`: no checkpoint, connections cut, as a crash or a failover would).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn start_again(&self) {
        self.pg_ctl_start();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A service binary running as a child process on a free port, for benchmarks and drills that measure a real
/// process's memory or kill it. Killed when dropped.
pub struct ChildService {
    child: std::process::Child,
    pub base_url: String,
}

impl ChildService {
    /// Starts `exe` with `env` (and `PORT`), its output in `log` (or stdout dropped and stderr inherited), and
    /// waits up to 30 s for `GET /healthz` to answer 200.
    pub async fn start(
        exe: &std::path::Path,
        env: &[(&str, String)],
        log: Option<std::fs::File>,
    ) -> Result<ChildService, String> {
        use std::process::Stdio;
        let port = free_port();
        let (stdout, stderr) = match log {
            Some(f) => (
                Stdio::from(f.try_clone().map_err(|e| e.to_string())?),
                Stdio::from(f),
            ),
            None => (Stdio::null(), Stdio::inherit()),
        };
        let child = std::process::Command::new(exe)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("PORT", port.to_string())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", exe.display()))?;
        let service = ChildService {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let started = std::time::Instant::now();
        while !healthy(port).await {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!(
                    "{} did not answer /healthz within 30 s",
                    exe.display()
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(service)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no graceful stop, whatever it held (leases, connections) is left as it was.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// `GET /healthz` answers 200 (a raw HTTP/1.1 exchange, so the harness needs no HTTP client).
async fn healthy(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    s.write_all(request).await.is_ok()
        && s.read_exact(&mut head).await.is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// Every line the process logs, written as the services write them (JSON, each line of a request marked with it,
/// `crate::logging::WithRequest`), at `debug`: the process's one subscriber, installed by the first test to ask
/// (a scoped one races with the binary's other tests over `tracing`'s global level hint).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn install() -> CapturedLogs {
        static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = CapturedLogs::default();
            let sink = logs.clone();
            tracing_subscriber::fmt()
                .json()
                .event_format(crate::logging::WithRequest::json())
                .with_env_filter("debug")
                .with_writer(move || sink.clone())
                .init();
            logs
        })
        .clone()
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
