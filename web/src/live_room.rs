//! The open room as the app holds it, with no DOM: the domain's
//! [`OptimisticRoom`] (confirmed state + this user's pending events), the
//! offline queue ([`Outbox`]), the socket's state ([`Link`]), the messages
//! the server refused, and the notices to show. The UI calls its methods
//! and sends the frames they return; every rule about events comes from
//! the domain.

use crate::link::{AfterClose, Link};
use crate::outbox::Outbox;
use crate::store::SharedStore;
use crate::wire::{submit_frame, ErrorInfo, MessagesPage, ServerFrame};
use domain::{
    ApplyError, ChatEvent, ChatMessageView, Command, Dropped, EventKind, EventType, OptimisticRoom,
    PendingEvent, Refusal, RoomState, Timestamp,
};
use uuid::Uuid;

/// An own message the server refused: shown as failed, to retry or discard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub event: PendingEvent,
    pub reason: String,
}

/// Something the user must see (a refused or undone action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: u64,
    pub text: String,
}

/// How a message shows: `data-state` of its article.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowState {
    Pending,
    Confirmed,
    Failed,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Confirmed => "confirmed",
            RowState::Failed => "failed",
        }
    }
}

/// One message as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub view: ChatMessageView,
    pub state: RowState,
    /// Why it failed, for a failed row.
    pub error: Option<String>,
}

/// What a frame from the socket asks of the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameOutcome {
    /// The server said "not now": send this queued event again after the delay.
    pub resend_after: Option<(Uuid, u32)>,
    /// The frame does not fit (a gap): reconnect from the last seq held.
    pub resync: bool,
    /// One of our `MESSAGE_READ`s was stored (unread counts changed).
    pub read_stored: bool,
}

/// The newest this many messages are shown at first; scrolling up adds as
/// many again.
pub const PAGE: usize = 50;

pub struct LiveRoom {
    room_id: String,
    room: OptimisticRoom,
    outbox: Outbox,
    link: Link,
    failed: Vec<Failed>,
    notices: Vec<Notice>,
    next_notice: u64,
}

impl LiveRoom {
    /// The room for `user` from a state the server sent (a snapshot plus the
    /// events after it). Events still queued from before (a reload, or
    /// offline work) are shown again as pending; those the state no longer
    /// admits stay queued, so that the server gives its verdict.
    pub fn new(user: &str, room_id: &str, state: RoomState, store: SharedStore) -> Self {
        let outbox = Outbox::open(store, user, room_id);
        let mut room = OptimisticRoom::new(user, state);
        for p in outbox.events() {
            // A refusal here is often an event stored before the reload
            // (a delete whose message is gone): the server will tell.
            let _ = room.submit(&p.command(), p.submitted_at);
        }
        LiveRoom {
            room_id: room_id.to_owned(),
            room,
            outbox,
            link: Link::new(),
            failed: Vec::new(),
            notices: Vec::new(),
            next_notice: 1,
        }
    }

    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    pub fn user(&self) -> &str {
        self.room.user()
    }

    /// What the user sees: confirmed state with pending events on top.
    pub fn shown(&self) -> &RoomState {
        self.room.shown()
    }

    pub fn confirmed(&self) -> &RoomState {
        self.room.confirmed()
    }

    pub fn pending(&self) -> &[PendingEvent] {
        self.room.pending()
    }

    pub fn queued(&self) -> &[PendingEvent] {
        self.outbox.events()
    }

    pub fn failed(&self) -> &[Failed] {
        &self.failed
    }

    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// The socket's path and query (without the token): it asks for every
    /// event after the last one held, so nothing is missed or seen twice.
    pub fn socket_path(&self) -> String {
        format!(
            "/api/rooms/{}/ws?afterSeq={}",
            self.room_id,
            self.room.confirmed().last_seq()
        )
    }

    /// An action of the user: decided by the domain against what they see,
    /// shown at once as pending, queued (stored), and returned as frames to
    /// send now if the socket is open (else they go when it opens).
    pub fn submit(&mut self, cmd: &Command, now: Timestamp) -> Result<Vec<String>, Refusal> {
        let pending = self.room.submit(cmd, now)?;
        let frame = submit_frame(&pending);
        self.outbox.push(pending);
        Ok(if self.link.is_open() {
            vec![frame]
        } else {
            Vec::new()
        })
    }

    /// A new message from the composer (checked by the domain's rules).
    pub fn send_text(
        &mut self,
        event_id: Uuid,
        text: &str,
        now: Timestamp,
    ) -> Result<Vec<String>, Refusal> {
        self.submit(
            &command(event_id, EventType::MessageSent, Some(text), None)?,
            now,
        )
    }

    /// Edit, delete, react, unreact or read `target`.
    pub fn act(
        &mut self,
        event_id: Uuid,
        event_type: EventType,
        content: Option<&str>,
        target: Uuid,
        now: Timestamp,
    ) -> Result<Vec<String>, Refusal> {
        self.submit(&command(event_id, event_type, content, Some(target))?, now)
    }

    /// The socket opened: every queued event goes (again), in order. The
    /// server stores an `eventId` once, so a resend is harmless.
    pub fn socket_opened(&mut self, now_ms: f64) -> Vec<String> {
        self.link.opened(now_ms);
        self.outbox.events().iter().map(submit_frame).collect()
    }

    pub fn socket_closed(&mut self, code: u16, browser_online: bool, now_ms: f64) -> AfterClose {
        self.link.closed(code, browser_online, now_ms)
    }

    /// The frame to send a queued event again, if it is still queued and
    /// the socket is open.
    pub fn resend(&self, event_id: Uuid) -> Option<String> {
        self.outbox
            .get(event_id)
            .filter(|_| self.link.is_open())
            .map(submit_frame)
    }

    /// A text frame from the socket.
    pub fn receive_frame(&mut self, text: &str) -> FrameOutcome {
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Event(e)) => self.receive_event(e),
            Ok(ServerFrame::Ack(e)) => self.receive_ack(e),
            Ok(ServerFrame::Error {
                event_id: Some(id),
                error,
            }) => self.refused(id, &error),
            // A frame of ours the server could not read, or a frame we cannot:
            // nothing to undo.
            Ok(ServerFrame::Error { event_id: None, .. }) | Err(_) => FrameOutcome::default(),
        }
    }

    /// An event of the room (live, or from a page of `/events`).
    pub fn receive_event(&mut self, e: ChatEvent) -> FrameOutcome {
        let mut out = FrameOutcome::default();
        if e.sender_id == self.user() && self.outbox.remove(e.event_id) {
            out.read_stored = e.event_type() == EventType::MessageRead;
        }
        match self.room.receive(e) {
            Ok(dropped) => self.undone(dropped),
            Err(ApplyError::Gap { .. }) => out.resync = true,
            Err(_) => {}
        }
        out
    }

    fn receive_ack(&mut self, e: ChatEvent) -> FrameOutcome {
        let mut out = FrameOutcome::default();
        if self.outbox.remove(e.event_id) {
            out.read_stored = e.event_type() == EventType::MessageRead;
        }
        // The event frame of the same event comes too, in seq order: an ack
        // ahead of the events before it waits for it.
        if e.seq <= self.room.confirmed().last_seq() + 1 {
            if let Ok(dropped) = self.room.receive(e) {
                self.undone(dropped);
            }
        }
        out
    }

    /// The server refused one of our events.
    fn refused(&mut self, id: Uuid, error: &ErrorInfo) -> FrameOutcome {
        if error.is_transient() {
            let delay_ms = error.retry_after.unwrap_or(1).clamp(1, 60) as u32 * 1000;
            return FrameOutcome {
                resend_after: self.outbox.contains(id).then_some((id, delay_ms)),
                ..FrameOutcome::default()
            };
        }
        let queued = self.outbox.get(id).cloned();
        self.outbox.remove(id);
        let reason = explain(&error.code, &error.message);
        let pending = self
            .room
            .pending()
            .iter()
            .find(|p| p.event_id == id)
            .cloned();
        let dropped = self.room.reject(id);
        match pending.or(queued) {
            Some(p) if p.kind.event_type() == EventType::MessageSent => {
                self.failed.push(Failed { event: p, reason });
            }
            Some(p) if p.kind.event_type() == EventType::MessageRead => {}
            Some(p) => {
                let text = format!("Could not {}: {reason}", verb(&p.kind));
                self.notify(text);
            }
            None => {}
        }
        self.undone(dropped);
        FrameOutcome::default()
    }

    /// Pending events a rebase (or a refusal before them) made invalid.
    fn undone(&mut self, dropped: Vec<Dropped>) {
        for d in dropped {
            self.outbox.remove(d.event.event_id);
            if d.event.kind.event_type() == EventType::MessageRead {
                continue;
            }
            let reason = explain(d.reason.code.as_str(), &d.reason.message);
            let text = format!("Could not {}: {reason}", verb(&d.event.kind));
            self.notify(text);
        }
    }

    /// Adds a notice for the user.
    pub fn notify(&mut self, text: String) {
        self.notices.push(Notice {
            id: self.next_notice,
            text,
        });
        self.next_notice += 1;
    }

    pub fn dismiss(&mut self, notice: u64) {
        self.notices.retain(|n| n.id != notice);
    }

    /// Sends a failed message again (same `eventId`: it is stored once).
    pub fn retry_failed(&mut self, event_id: Uuid, now: Timestamp) -> Result<Vec<String>, Refusal> {
        let Some(at) = self
            .failed
            .iter()
            .position(|f| f.event.event_id == event_id)
        else {
            return Ok(Vec::new());
        };
        let f = self.failed.remove(at);
        self.submit(&f.event.command(), now).inspect_err(|_| {
            self.failed.insert(at, f.clone());
        })
    }

    pub fn discard_failed(&mut self, event_id: Uuid) {
        self.failed.retain(|f| f.event.event_id != event_id);
    }

    /// The newest `limit` messages as shown, then the failed ones. A message
    /// is pending while an own event about it (its sending, an edit, a
    /// reaction) waits for the server.
    pub fn rows(&self, limit: usize) -> Vec<Row> {
        let waiting: Vec<Uuid> = self
            .room
            .pending()
            .iter()
            .filter(|p| p.kind.event_type() != EventType::MessageRead)
            .flat_map(|p| std::iter::once(p.event_id).chain(p.kind.target()))
            .collect();
        let mut rows = rows_of(self.shown(), limit, |id| {
            if waiting.contains(&id) {
                RowState::Pending
            } else {
                RowState::Confirmed
            }
        });
        let room = self.room_id.clone();
        rows.extend(self.failed.iter().filter_map(|f| {
            let EventKind::MessageSent { content } = &f.event.kind else {
                return None;
            };
            Some(Row {
                view: ChatMessageView {
                    message_id: f.event.event_id,
                    room_id: room.clone(),
                    seq: 0,
                    sender_id: self.user().to_owned(),
                    content: content.to_string(),
                    sent_at: f.event.submitted_at,
                    edited_at: None,
                    reactions: Default::default(),
                    read_by: Vec::new(),
                },
                state: RowState::Failed,
                error: Some(f.reason.clone()),
            })
        }));
        rows
    }

    /// Whether older messages exist beyond the newest `limit` shown: held
    /// already, or to be read from `/messages?beforeSeq` ([`Self::older_before`]).
    pub fn has_older(&self, limit: usize) -> bool {
        self.shown().message_count() > limit || self.older_before().is_some()
    }

    /// The `beforeSeq` of the next page of older messages to read from the
    /// server, when the state holds only the newest part of the room.
    pub fn older_before(&self) -> Option<u64> {
        older_before(self.room.confirmed())
    }

    /// Adds a page of `/messages?beforeSeq=before&limit=limit`.
    pub fn add_older(&mut self, page: &MessagesPage, before: u64, limit: usize) -> bool {
        let reaches_start = page.messages.len() < limit;
        self.room
            .add_older(&page.messages, before, reaches_start)
            .is_ok()
    }

    /// The `MESSAGE_READ` to send when the messages `visible` are on screen:
    /// for the newest message from someone else among them, unless the
    /// user's marker is already there.
    pub fn read_command(&self, visible: &[Uuid], event_id: Uuid) -> Option<Command> {
        let shown = self.shown();
        let marker = shown.read_marker(self.user());
        let newest = visible
            .iter()
            .filter_map(|id| shown.message(*id))
            .filter(|m| m.sender_id != self.user() && m.seq > marker)
            .filter(|m| self.room.confirmed().message(m.id).is_some())
            .max_by_key(|m| m.seq)?;
        command(event_id, EventType::MessageRead, None, Some(newest.id)).ok()
    }
}

/// The `beforeSeq` of the next page of older messages for a partial state.
pub fn older_before(state: &RoomState) -> Option<u64> {
    state.coverage().map(|c| c.from).filter(|&from| from > 1)
}

/// The newest `limit` messages of `state` as rows.
pub fn rows_of(state: &RoomState, limit: usize, row_state: impl Fn(Uuid) -> RowState) -> Vec<Row> {
    let mut newest: Vec<_> = state.messages().rev().take(limit).collect();
    newest.reverse();
    newest
        .into_iter()
        .map(|m| Row {
            view: state.view_of(m),
            state: row_state(m.id),
            error: None,
        })
        .collect()
}

/// A command checked by the domain's state-free rules (content length,
/// blank text), as the server would check it.
pub fn command(
    event_id: Uuid,
    event_type: EventType,
    content: Option<&str>,
    target: Option<Uuid>,
) -> Result<Command, Refusal> {
    domain::Submission {
        event_id: event_id.hyphenated().to_string(),
        event_type: event_type.as_str().to_owned(),
        content: content.map(str::to_owned),
        target_message_id: target.map(|t| t.hyphenated().to_string()),
        expected_seq: None,
    }
    .validate()
}

/// What an action was, for a sentence that says it failed.
fn verb(kind: &EventKind) -> &'static str {
    match kind.event_type() {
        EventType::MessageSent => "send the message",
        EventType::MessageEdited => "edit the message",
        EventType::MessageDeleted => "delete the message",
        EventType::ReactionAdded => "add the reaction",
        EventType::ReactionRemoved => "remove the reaction",
        EventType::MessageRead => "mark the message read",
        EventType::RoomCreated => "create the room",
    }
}

/// A sentence for a person from an error code and the server's message.
pub fn explain(code: &str, message: &str) -> String {
    match code {
        "message_not_found" => "the message was deleted.".into(),
        "forbidden" => "only the sender of a message may change it.".into(),
        "content_empty" => "the text is empty.".into(),
        "content_too_long" => "the text is too long.".into(),
        "unauthorized" => "your session ended; sign in again.".into(),
        _ if message.is_empty() => format!("the server refused it ({code})."),
        _ => format!("{message} ({code})."),
    }
}
