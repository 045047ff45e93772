//! The durability boundary: where the broker's session and retained state would be
//! made durable, and the rule that a QoS 1/2 PUBLISH is acknowledged only after the
//! store has taken it.
//!
//! Every change that a restart must survive is reported to the store as a
//! [`StoreEvent`] at the point it happens in memory. Before a connection writes the
//! acknowledgements (PUBACK, PUBREC) for a batch of packets it awaits
//! [`Store::commit`]. The memory store, the only one today, commits at once; a
//! log-structured store later appends events and completes the commit after fsync,
//! so "acknowledged" comes to mean "on disk" without changing the callers.

use std::sync::Arc;

use super::message::Message;
use crate::protocol::{SubscriptionOptions, TopicFilter};

/// A change to durable state, reported as it is applied in memory.
#[derive(Debug)]
pub enum StoreEvent<'a> {
    /// A retained message was stored (or deleted, for an empty payload).
    Retained(&'a Arc<Message>),
    /// A persistent session began or was resumed.
    SessionOpened { client_id: &'a str },
    /// A session and everything queued for it was discarded.
    SessionRemoved { client_id: &'a str },
    Subscribed {
        client_id: &'a str,
        filter: &'a TopicFilter,
        options: SubscriptionOptions,
    },
    Unsubscribed {
        client_id: &'a str,
        filter: &'a TopicFilter,
    },
    /// A QoS 1/2 message was queued for an offline or online persistent session.
    Queued {
        client_id: &'a str,
        message: &'a Arc<Message>,
    },
}

/// Where durable state goes.
#[derive(Debug, Clone, Default)]
pub enum Store {
    /// Nothing survives a restart; every commit completes at once.
    #[default]
    Memory,
}

impl Store {
    /// Notes a change; cheap and synchronous, called under the broker's locks.
    pub fn record(&self, event: StoreEvent<'_>) {
        match self {
            Store::Memory => {
                let _ = event;
            }
        }
    }

    /// Completes when every event recorded so far is durable.
    pub async fn commit(&self) -> std::io::Result<()> {
        match self {
            Store::Memory => Ok(()),
        }
    }

    /// Whether commits ever wait; lets the hot path skip the await entirely.
    pub fn commits_immediately(&self) -> bool {
        matches!(self, Store::Memory)
    }
}
