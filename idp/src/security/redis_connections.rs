//! Redis connections, one per HTTP worker.
//!
//! The redis crate drives a connection from a task on the runtime that opened it, and each
//! HTTP worker is a single-threaded runtime of its own. With one connection opened at
//! start-up, every command a worker sent crossed threads twice (the request to the
//! connection's task on the main runtime, the answer back), and a deny-list check on each
//! introspection paid for both wake-ups. Each worker now opens its own connection as it
//! starts ([`RedisConnections::open_for_this_thread`]); its commands stay on its thread.
//! Everything else (background tasks, the CLI) uses the shared connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's connections, by the id of the `RedisConnections` they belong to (a
    /// test process may run several servers).
    static THIS_THREAD: RefCell<HashMap<u64, ConnectionManager>> = RefCell::new(HashMap::new());
}

/// A Redis server's connections: the shared one and each worker thread's own. Each one
/// reconnects by itself after an outage (`ConnectionManager`).
#[derive(Clone)]
pub struct RedisConnections {
    id: u64,
    client: redis::Client,
    shared: ConnectionManager,
}

impl std::fmt::Debug for RedisConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnections").field("id", &self.id).finish()
    }
}

impl RedisConnections {
    /// Opens the shared connection, waiting at most `timeout`. A `rediss://` URL speaks TLS,
    /// checking the server against `ca` (a PEM file) when given, else the system's roots.
    pub async fn connect(url: &str, ca: Option<&std::path::Path>, timeout: Duration) -> Result<Self, String> {
        let client = match ca {
            Some(path) => {
                let root_cert =
                    std::fs::read(path).map_err(|e| format!("redis_ca_file {}: {e}", path.display()))?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(url, certificates)
            }
            None => redis::Client::open(url),
        }
        .map_err(|e| e.to_string())?;
        let shared = match tokio::time::timeout(timeout, client.get_connection_manager()).await {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("timed out after {} s", timeout.as_secs())),
        };
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client,
            shared,
        })
    }

    /// The calling thread's own connection if it opened one, else the shared one.
    pub fn get(&self) -> ConnectionManager {
        THIS_THREAD
            .with(|mine| mine.borrow().get(&self.id).cloned())
            .unwrap_or_else(|| self.shared.clone())
    }

    /// Opens a connection driven by the calling thread's runtime, for its later commands.
    /// On failure, or after 2 s (a worker must not wait long to start), the thread goes on
    /// with the shared connection.
    pub async fn open_for_this_thread(&self) {
        let opening = self.client.get_connection_manager();
        match tokio::time::timeout(Duration::from_secs(2), opening).await {
            Ok(Ok(own)) => THIS_THREAD.with(|mine| {
                mine.borrow_mut().insert(self.id, own);
            }),
            Ok(Err(e)) => tracing::warn!(error = %e, "worker uses the shared Redis connection"),
            Err(_) => tracing::warn!("worker uses the shared Redis connection (opening its own timed out)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Redis server of the test environment (127.0.0.1:6379).
    #[tokio::test]
    async fn a_thread_that_opened_its_own_connection_uses_it_and_others_share() {
        let connected =
            RedisConnections::connect("redis://127.0.0.1:6379", None, Duration::from_secs(2)).await;
        assert!(
            connected.is_ok(),
            "the test environment's Redis runs on 127.0.0.1:6379"
        );
        let Ok(redis) = connected else { return };
        let client_id = |mut c: ConnectionManager| async move {
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut c)
                .await
                .unwrap_or(-1)
        };
        let shared = client_id(redis.get()).await;
        let other = redis.clone();
        let elsewhere = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map(|rt| {
                rt.block_on(async {
                    other.open_for_this_thread().await;
                    (client_id(other.get()).await, client_id(other.get()).await)
                })
            })
        })
        .join();
        assert!(matches!(elsewhere, Ok(Ok(_))), "the worker thread ran");
        let Ok(Ok((own, own_again))) = elsewhere else {
            return;
        };
        assert!(shared > 0 && own > 0);
        assert_ne!(own, shared, "the worker has a connection of its own");
        assert_eq!(own, own_again, "and keeps using it");
        assert_eq!(client_id(redis.get()).await, shared, "this thread still shares");
    }
}
