//! A private `redis-server` for `up` when the app's Redis address is not configured, so that a
//! newcomer needs nothing else running. It listens on a free loopback port, publishes key-expiry
//! events promptly (`notify-keyspace-events Ex` and `hz 100`, which the expiration timer relies
//! on), keeps its data only under the state directory, and is shut down when `up` exits.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

pub struct PrivateRedis {
    child: Child,
    pub url: String,
}

impl PrivateRedis {
    pub async fn start(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes"])
            .args(["--notify-keyspace-events", "Ex", "--protected-mode", "yes", "--loglevel", "warning"])
            // Expired keys are found by a cycle that runs `hz` times a second: 100 announces an
            // order's expiry within about 10 ms instead of 100.
            .args(["--hz", "100"])
            .arg("--dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server from PATH (install it with `apt-get install redis-server`, or set SPIN_VARIABLE_REDIS_ADDRESS to a running Redis)")?;
        let url = format!("redis://127.0.0.1:{port}");
        let mut redis = Self { child, url };
        redis.wait_until_ready().await?;
        Ok(redis)
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("redis-server exited during start-up ({status})");
            }
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "redis-server did not answer PING within 10 s at {}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks Redis to shut down (it flushes its append-only file), then makes sure it is gone.
    pub async fn stop(mut self) {
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut connection) = client.get_multiplexed_async_connection().await
        {
            // The server closes the connection instead of replying, so an error is expected.
            redis::cmd("SHUTDOWN")
                .query_async::<()>(&mut connection)
                .await
                .ok();
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await.ok();
        }
    }
}
