//! Links carry CDP between tabmux and a browser. Tools never see which one is in use:
//! they talk to a [`Channel`] (one tab) and the browser layer asks the link for tabs.

pub mod direct;
pub mod extension;
pub mod launch;
pub mod shared;
pub mod tree;

use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::cdp::{CdpConnection, CdpEvent};
use crate::error::Result;

/// The CDP channel of one tab.
#[derive(Clone)]
pub enum Channel {
    /// A flat CDP session on a direct connection.
    Direct {
        conn: CdpConnection,
        session: String,
    },
    /// A tab relayed by the extension.
    Extension {
        link: extension::ExtensionLink,
        tab: i64,
    },
}

impl Channel {
    /// Sends a command to the tab, or to one of its child sessions (an out-of-process
    /// iframe) when `child` is given.
    pub async fn call_raw(
        &self,
        child: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Box<RawValue>> {
        match self {
            Channel::Direct { conn, session } => {
                conn.call_raw(Some(child.unwrap_or(session)), method, params, timeout)
                    .await
            }
            Channel::Extension { link, tab } => {
                link.cdp(*tab, child, method, params, timeout).await
            }
        }
    }
}

/// What a link tells the browser layer about one of its tabs.
#[derive(Debug, Clone)]
pub enum TabEvent {
    /// A CDP event of the tab, or of one of its child sessions.
    Cdp(CdpEvent),
    /// The tab is gone (the extension's `tab.closed`, or its browser went away);
    /// `reason` as the extension gives it (`user`, `creator-left`, `holder`, …).
    Closed { reason: Option<String> },
    /// Another instance took the tab (the extension's `tab.lost`): the name of the
    /// client it went to.
    Lost { to: Option<String> },
    /// The user took the tab back (the extension's `tab.takenBack`).
    TakenBack,
    /// The tab went to a page no client may control and the extension let go of it
    /// (`tab.forbidden`); `sent_back` when it was sent back to `about:blank`.
    Forbidden {
        url: Option<String>,
        sent_back: bool,
    },
    /// The debugger was attached to the tab again: its domains must be enabled again.
    Attached,
}

/// A tab a link hands to the browser layer: its key, its channel and its events.
pub struct TabConn {
    pub key: String,
    pub channel: Channel,
    pub events: mpsc::Receiver<TabEvent>,
}

/// A tab of the browser as listed to a model.
#[derive(Debug, Clone)]
pub struct TabInfo {
    pub id: String,
    pub title: String,
    pub url: String,
    /// The holder's name when another instance holds it.
    pub holder: Option<String>,
    pub mine: bool,
    /// Who waits for the tab (names, first in line first).
    pub waiters: Vec<String>,
    /// A tab the user opened that this instance may not use without asking the user.
    pub needs_consent: bool,
}
