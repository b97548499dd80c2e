//! Correlation of replies to requests, for one connection, with no I/O.
//!
//! Each request registers its id and gets a one-shot receiver. The first of these
//! wins, and every later one finds nothing to do:
//! - [`Pending::resolve`]: the peer's reply or error arrived;
//! - [`Pending::cancel`]: the sender gave up (deadline passed, or its future dropped);
//! - [`Pending::close`]: the connection closed; every waiter gets the close error at
//!   once and later registrations are refused with it.
//!
//! Outcomes are sent while the table's lock is held, so once `cancel` reports that
//! the id was gone, the receiver already holds the outcome that beat it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::error::{WireError, codes};

/// What a request resolves to.
/// A reply's `result`, kept as JSON text (a large CDP answer is parsed once, by whoever
/// needs it), or the error.
pub type Outcome = Result<Box<serde_json::value::RawValue>, WireError>;

/// The table of requests awaiting a reply on one connection.
#[derive(Debug, Default)]
pub struct Pending {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    waiters: HashMap<u64, oneshot::Sender<Outcome>>,
    closed: Option<WireError>,
}

impl Pending {
    /// An empty, open table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing here panics while holding the lock; recover anyway rather than spread a panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers request `id`. Fails with the close error once the table is closed,
    /// and with `INTERNAL` if `id` is already waiting.
    pub fn register(&self, id: u64) -> Result<oneshot::Receiver<Outcome>, WireError> {
        let mut inner = self.lock();
        if let Some(err) = &inner.closed {
            return Err(err.clone());
        }
        if inner.waiters.contains_key(&id) {
            return Err(WireError::new(
                codes::INTERNAL,
                format!("bridge: request id {id} is already pending"),
            ));
        }
        let (tx, rx) = oneshot::channel();
        inner.waiters.insert(id, tx);
        Ok(rx)
    }

    /// Delivers the peer's answer to request `id`. Returns false when no such request
    /// waits (late reply, unknown id, or already resolved): the answer is dropped.
    pub fn resolve(&self, id: u64, outcome: Outcome) -> bool {
        let mut inner = self.lock();
        match inner.waiters.remove(&id) {
            // A receiver dropped meanwhile is the same as a cancel that lost the race.
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    /// Withdraws request `id`. Returns true if it was still waiting (the caller then
    /// reports its own outcome, e.g. `TIMEOUT`); false if something else resolved it.
    pub fn cancel(&self, id: u64) -> bool {
        self.lock().waiters.remove(&id).is_some()
    }

    /// Fails every waiting request with `err` and refuses later ones. Only the first
    /// call has an effect. Returns how many requests were failed.
    pub fn close(&self, err: WireError) -> usize {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return 0;
        }
        let waiters = std::mem::take(&mut inner.waiters);
        let n = waiters.len();
        for (_, tx) in waiters {
            let _ = tx.send(Err(err.clone()));
        }
        inner.closed = Some(err);
        n
    }

    /// Requests still waiting.
    pub fn len(&self) -> usize {
        self.lock().waiters.len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`Pending::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }
}
