//! The backends under test: the suite's one adapter to each. A backend's
//! constructor, its handles and its restart live here and nowhere else, so
//! a change to how backends are built touches this file only.

use tower_webhook::IdempotencyStore;

/// A backend under test: a fresh, empty instance per case, and handles on
/// its data.
pub trait Backend: Sized + Send + 'static {
    /// The store (or queue) type the cases drive.
    type Store: IdempotencyStore;

    /// A fresh, empty backend that lives until the value is dropped.
    fn open() -> impl Future<Output = Self> + Send;

    /// A handle on the backend's data, opened as another process would open
    /// it: a second connection or file handle where the backend has one, a
    /// clone where it lives in this process.
    fn store(&self) -> impl Future<Output = Self::Store> + Send;
}

/// A backend that keeps its data across a restart.
pub trait Persistent: Backend {
    /// Restarts the backend on the same data, as a crashed and restarted
    /// process would find it, and opens a handle on it. The case drops
    /// every handle it held before calling this.
    fn reopen(&mut self) -> impl Future<Output = Self::Store> + Send;
}

/// [`MemoryStore`](tower_webhook::MemoryStore): inline claims in memory.
pub struct MemoryStoreBackend(tower_webhook::MemoryStore);

impl Backend for MemoryStoreBackend {
    type Store = tower_webhook::MemoryStore;

    async fn open() -> Self {
        Self(tower_webhook::MemoryStore::new())
    }

    async fn store(&self) -> Self::Store {
        self.0.clone()
    }
}

/// [`MemoryQueue`](tower_webhook::queue::MemoryQueue): claims and jobs in
/// memory; nothing survives the process, so it is not [`Persistent`].
pub struct MemoryQueueBackend(tower_webhook::queue::MemoryQueue);

impl Backend for MemoryQueueBackend {
    type Store = tower_webhook::queue::MemoryQueue;

    async fn open() -> Self {
        Self(tower_webhook::queue::MemoryQueue::new())
    }

    async fn store(&self) -> Self::Store {
        self.0.clone()
    }
}

#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBackend;

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::path::PathBuf;

    use tower_webhook::SqliteStore;

    use super::{Backend, Persistent};
    use crate::harness::TempDir;

    /// [`SqliteStore`] on a real file in a fresh temporary directory; every
    /// handle is its own open of the file.
    pub struct SqliteBackend {
        path: PathBuf,
        _dir: TempDir,
    }

    impl Backend for SqliteBackend {
        type Store = SqliteStore;

        async fn open() -> Self {
            let dir = TempDir::new();
            Self {
                path: dir.join("store.db"),
                _dir: dir,
            }
        }

        async fn store(&self) -> SqliteStore {
            SqliteStore::open(&self.path).unwrap()
        }
    }

    impl Persistent for SqliteBackend {
        async fn reopen(&mut self) -> SqliteStore {
            self.store().await
        }
    }
}

#[cfg(feature = "redis")]
pub use redis::RedisBackend;

#[cfg(feature = "redis")]
mod redis {
    use std::time::{Duration, Instant};

    use tower_webhook::RedisStore;

    use super::{Backend, Persistent};
    use crate::redis_server::RedisServer;

    /// [`RedisStore`] on a real `redis-server` of its own (a free
    /// 127.0.0.1 port, a temporary directory) with `appendonly yes`; every
    /// handle is its own connection.
    pub struct RedisBackend {
        server: RedisServer,
    }

    impl Backend for RedisBackend {
        type Store = RedisStore;

        async fn open() -> Self {
            // The default `appendfsync everysec`: a reply goes out once the
            // write reached the OS, so a killed process (the restart in
            // `reopen`, not power loss) loses nothing.
            let server = RedisServer::start_with(&["--appendonly", "yes"]);
            Self { server }
        }

        async fn store(&self) -> RedisStore {
            RedisStore::connect(&self.server.url()).await.unwrap()
        }
    }

    impl Persistent for RedisBackend {
        /// Kills `redis-server` (SIGKILL) and starts it again on its
        /// append-only file.
        async fn reopen(&mut self) -> RedisStore {
            self.server.restart();
            let deadline = Instant::now() + crate::PATIENCE;
            loop {
                match RedisStore::connect(&self.server.url()).await {
                    Ok(store) => return store,
                    Err(e) => assert!(Instant::now() < deadline, "redis never came back: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(feature = "postgres")]
pub use postgres::PostgresBackend;

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;
    use std::time::Duration;

    use tower_webhook::PostgresStore;

    use super::{Backend, Persistent};
    use crate::postgres_server::PostgresServer;

    /// [`PostgresStore`] on a real Postgres server (one per test binary
    /// while cases run), in a schema of its own per case; every handle is
    /// its own pool, as another replica's.
    pub struct PostgresBackend {
        server: Arc<PostgresServer>,
        schema: String,
    }

    impl Backend for PostgresBackend {
        type Store = PostgresStore;

        async fn open() -> Self {
            let server = tokio::task::spawn_blocking(PostgresServer::shared)
                .await
                .unwrap();
            Self {
                server,
                schema: PostgresServer::unique_name("conformance"),
            }
        }

        async fn store(&self) -> PostgresStore {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&self.server.url())
                .await
                .unwrap();
            PostgresStore::builder(pool)
                .schema(self.schema.clone())
                .sweep_interval(Duration::from_millis(200))
                .open()
                .await
                .unwrap()
        }
    }

    impl Persistent for PostgresBackend {
        /// A new pool and store on the same schema, as a restarted replica
        /// finds it.
        async fn reopen(&mut self) -> PostgresStore {
            self.store().await
        }
    }
}
