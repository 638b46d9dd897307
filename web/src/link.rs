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
        // A stopped socket (the room is gone) is no socket to wait for.
        match socket.filter(|l| l.state != LinkState::Stopped) {
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
/// A socket open this long was working: when it drops, the next attempt
/// goes at once and the backoff starts afresh. One that drops sooner (a
/// server that accepts and closes, a recurring lag) counts as a failure, so
/// that reconnecting never spins.
pub const STABLE_MS: f64 = 10_000.0;

/// The socket of one open room, as a state machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    state: LinkState,
    /// Attempts in a row that ended without a socket that stayed open.
    failures: u32,
    ever_open: bool,
    /// When the socket last opened (the page's clock, ms).
    opened_at: f64,
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
            opened_at: 0.0,
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
            LinkState::Connecting | LinkState::Reconnecting => Status::Reconnecting,
            LinkState::Stopped => Status::Online,
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

    /// The socket opened at `now_ms`.
    pub fn opened(&mut self, now_ms: f64) {
        self.state = LinkState::Open;
        self.ever_open = true;
        self.opened_at = now_ms;
    }

    /// The socket closed with `code` at `now_ms`; `browser_online` is the
    /// browser's view of the network.
    pub fn closed(&mut self, code: u16, browser_online: bool, now_ms: f64) -> AfterClose {
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
        let was_working = self.state == LinkState::Open && now_ms - self.opened_at >= STABLE_MS;
        let delay_ms = if was_working {
            // Try again at once, with a fresh backoff.
            self.failures = 0;
            0
        } else {
            let shift = self.failures.min(5);
            self.failures += 1;
            BACKOFF_FIRST_MS
                .saturating_mul(1 << shift)
                .min(BACKOFF_MAX_MS)
        };
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
        link.opened(0.0);
        assert_eq!(Status::of(true, Some(true), Some(&link)).label(), "Online");
        link.closed(1001, true, 1.0);
        assert_eq!(
            Status::of(true, Some(true), Some(&link)).label(),
            "Reconnecting…"
        );
        link.went_offline();
        assert_eq!(Status::of(true, Some(true), Some(&link)).label(), "Offline");
        // A stopped socket (the room is gone): the server's answers decide.
        link.stop();
        assert_eq!(Status::of(true, Some(true), Some(&link)).label(), "Online");
        assert_eq!(
            Status::of(true, Some(false), Some(&link)).label(),
            "Reconnecting…"
        );
    }

    #[test]
    fn a_drop_retries_at_once_then_backs_off_until_open() {
        let mut link = Link::new();
        link.connecting();
        link.opened(1_000.0);
        // Open for a minute: it was working.
        assert_eq!(
            link.closed(1006, true, 61_000.0),
            AfterClose::Retry { delay_ms: 0 }
        );
        let mut delays = Vec::new();
        for _ in 0..8 {
            link.connecting();
            match link.closed(1006, true, 62_000.0) {
                AfterClose::Retry { delay_ms } => delays.push(delay_ms),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        link.connecting();
        link.opened(100_000.0);
        assert_eq!(
            link.closed(1006, true, 200_000.0),
            AfterClose::Retry { delay_ms: 0 }
        );
        assert_eq!(link.failures(), 0);
    }

    #[test]
    fn a_socket_that_keeps_closing_soon_after_opening_backs_off() {
        let mut link = Link::new();
        let mut now = 0.0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            link.connecting();
            link.opened(now);
            now += 200.0;
            match link.closed(4008, true, now) {
                AfterClose::Retry { delay_ms } => {
                    delays.push(delay_ms);
                    now += f64::from(delay_ms);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 15000]);
    }

    #[test]
    fn signed_out_stops_and_offline_waits() {
        let mut link = Link::new();
        link.opened(0.0);
        assert_eq!(link.closed(4001, true, 1.0), AfterClose::SignIn);
        assert_eq!(link.state(), LinkState::Stopped);
        assert_eq!(link.closed(1006, true, 2.0), AfterClose::Stop);
        let mut link = Link::new();
        link.opened(0.0);
        assert_eq!(link.closed(1006, false, 1.0), AfterClose::WaitOnline);
        link.came_online();
        assert_eq!(link.state(), LinkState::Reconnecting);
    }
}
