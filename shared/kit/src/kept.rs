//! Connections kept between transactions, out of the pool.
//!
//! The pool pings every connection it takes back (a round trip before the connection can serve
//! anyone again). A runner that ends its transaction cleanly (committed or rolled back, nothing
//! left unread) keeps the connection here instead, and its next transaction starts on it at once.
//! A transaction that did not end cleanly (an error, a cancelled future) drops its connection,
//! which goes back to the pool the usual way: the pool rolls back what was left and pings.
//!
//! Kept connections count against the pool's size, so a keeper holds at most `most` of them and the
//! rest of the pool stays for everyone else (HTTP requests, timers). A kept connection the
//! database dropped meanwhile (a restart, a failover) fails its next statement, which every caller
//! treats as the database being unavailable, and is not kept again.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::{Arc, Mutex};

/// Up to `most` connections of one pool, kept between transactions.
#[derive(Debug, Clone)]
pub struct Kept {
    conns: Arc<Mutex<Vec<PoolConnection<Postgres>>>>,
    most: usize,
}

impl Kept {
    /// A keeper of at most `most` connections; 0 keeps none.
    pub fn new(most: usize) -> Self {
        Kept {
            conns: Arc::default(),
            most,
        }
    }

    /// A kept connection, or one from `pool`.
    pub async fn take(&self, pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let kept = self.lock().pop();
        match kept {
            Some(conn) => Ok(conn),
            None => pool.acquire().await,
        }
    }

    /// Keeps `conn`, whose transaction ended cleanly, for the next [`Kept::take`]; past `most`,
    /// it goes back to the pool.
    pub fn keep(&self, conn: PoolConnection<Postgres>) {
        let mut conns = self.lock();
        if conns.len() < self.most {
            conns.push(conn);
        }
    }

    /// How many connections are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PoolConnection<Postgres>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }
}
