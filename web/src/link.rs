//! The connection: the state of the open room's WebSocket, when to try
//! again after it drops (exponential backoff), and the one line of status
//! the app shows (UI.md: `Online`, `Connecting…`, `Reconnecting…`,
//! `Offline`).

/// What the status element says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Online,
    Connecting,
    Reconnecting,
    Offline,
}

impl Status {
    /// The exact text of UI.md.
    pub fn label(self) -> &'static str {
        match self {
            Status::Online => "Online",
            Status::Connecting => "Connecting…",
            Status::Reconnecting => "Reconnecting…",
            Status::Offline => "Offline",
        }
    }

    /// The status of the app: the browser's network, whether the server
    /// answered the last request (`None`: not asked yet), and the open
    /// room's socket if a room is open.
    pub fn of(browser_online: bool, server_ok: Option<bool>, socket: Option<&Link>) -> Status {
        if !browser_online {
            return Status::Offline;
        }
        match socket {
            Some(link) => link.status(),
            None => match server_ok {
                None => Status::Connecting,
                Some(true) => Status::Online,
                Some(false) => Status::Reconnecting,
            },
        }
    }
}

/// Where the socket of the open room is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected yet, or trying.
    Connecting,
    Open,
    /// Dropped; trying again (now or after a delay).
    Reconnecting,
    /// The browser is offline: waiting for it to come back.
    Offline,
    /// Given up for good: signed out, or the room is gone.
    Stopped,
}

/// What to do after the socket closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterClose {
    /// Connect again after this many milliseconds.
    Retry { delay_ms: u32 },
    /// The token is no longer valid (close code 4001): sign in again.
    SignIn,
    /// Wait for the browser to come online.
    WaitOnline,
    /// Nothing: the socket was closed on purpose.
    Stop,
}

/// The first delay after a drop, and the longest.
pub const BACKOFF_FIRST_MS: u32 = 500;
pub const BACKOFF_MAX_MS: u32 = 15_000;

/// The socket of one open room, as a state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    state: LinkState,
    /// Attempts in a row that ended without the socket opening.
    failures: u32,
    ever_open: bool,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    pub fn new() -> Self {
        Link {
            state: LinkState::Connecting,
            failures: 0,
            ever_open: false,
        }
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    pub fn is_open(&self) -> bool {
        self.state == LinkState::Open
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn status(&self) -> Status {
        match self.state {
            LinkState::Open => Status::Online,
            LinkState::Connecting if !self.ever_open && self.failures == 0 => Status::Connecting,
            LinkState::Connecting | LinkState::Reconnecting | LinkState::Stopped => {
                Status::Reconnecting
            }
            LinkState::Offline => Status::Offline,
        }
    }

    /// An attempt to connect starts.
    pub fn connecting(&mut self) {
        if self.state != LinkState::Stopped {
            self.state = if self.ever_open || self.failures > 0 {
                LinkState::Reconnecting
            } else {
                LinkState::Connecting
            };
        }
    }

    pub fn opened(&mut self) {
        self.state = LinkState::Open;
        self.failures = 0;
        self.ever_open = true;
    }

    /// The socket closed with `code`; `browser_online` is the browser's view
    /// of the network.
    pub fn closed(&mut self, code: u16, browser_online: bool) -> AfterClose {
        if self.state == LinkState::Stopped {
            return AfterClose::Stop;
        }
        if code == 4001 {
            self.state = LinkState::Stopped;
            return AfterClose::SignIn;
        }
        if !browser_online {
            self.state = LinkState::Offline;
            return AfterClose::WaitOnline;
        }
        let delay_ms = if self.state == LinkState::Open {
            // It was working: try again at once, once.
            0
        } else {
            let shift = self.failures.min(5);
            BACKOFF_FIRST_MS
                .saturating_mul(1 << shift)
                .min(BACKOFF_MAX_MS)
        };
        if self.state != LinkState::Open {
            self.failures += 1;
        }
        self.state = LinkState::Reconnecting;
        AfterClose::Retry { delay_ms }
    }

    pub fn went_offline(&mut self) {
        if self.state != LinkState::Stopped {
            self.state = LinkState::Offline;
        }
    }

    /// The browser is back online: connect at once, with a fresh backoff.
    pub fn came_online(&mut self) {
        if self.state != LinkState::Stopped {
            self.failures = 0;
            self.state = LinkState::Reconnecting;
        }
    }

    /// No more attempts (the room is left, or the session ended).
    pub fn stop(&mut self) {
        self.state = LinkState::Stopped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn status_follows_the_browser_the_server_and_the_socket() {
        assert_eq!(Status::of(false, Some(true), None), Status::Offline);
        assert_eq!(Status::of(true, None, None), Status::Connecting);
        assert_eq!(Status::of(true, Some(true), None), Status::Online);
        assert_eq!(Status::of(true, Some(false), None), Status::Reconnecting);
        let mut link = Link::new();
        link.connecting();
        assert_eq!(
            Status::of(true, Some(true), Some(&link)),
            Status::Connecting
        );
        link.opened();
        assert_eq!(Status::of(true, Some(true), Some(&link)).label(), "Online");
        link.closed(1001, true);
        assert_eq!(
            Status::of(true, Some(true), Some(&link)).label(),
            "Reconnecting…"
        );
        link.went_offline();
        assert_eq!(Status::of(true, Some(true), Some(&link)).label(), "Offline");
    }

    #[test]
    fn a_drop_retries_at_once_then_backs_off_until_open() {
        let mut link = Link::new();
        link.connecting();
        link.opened();
        assert_eq!(link.closed(1006, true), AfterClose::Retry { delay_ms: 0 });
        let mut delays = Vec::new();
        for _ in 0..8 {
            link.connecting();
            match link.closed(1006, true) {
                AfterClose::Retry { delay_ms } => delays.push(delay_ms),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        link.connecting();
        link.opened();
        assert_eq!(link.failures(), 0);
    }

    #[test]
    fn signed_out_stops_and_offline_waits() {
        let mut link = Link::new();
        link.opened();
        assert_eq!(link.closed(4001, true), AfterClose::SignIn);
        assert_eq!(link.state(), LinkState::Stopped);
        assert_eq!(link.closed(1006, true), AfterClose::Stop);
        let mut link = Link::new();
        link.opened();
        assert_eq!(link.closed(1006, false), AfterClose::WaitOnline);
        link.came_online();
        assert_eq!(link.state(), LinkState::Reconnecting);
    }
}
