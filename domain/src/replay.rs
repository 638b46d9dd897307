//! Bytes to state: a room's log in its JSON wire form (an array of events,
//! as `/events` pages carry them) replayed into a [`RoomState`], each event
//! applied as soon as it is decoded. No list of a million events is built
//! on the way, so a long log costs its decoding and its replay, and the
//! memory of the resulting state only.

use crate::event::ChatEvent;
use crate::state::{ApplyError, RoomState};
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use std::fmt;

/// Why a JSON log could not be replayed. The state keeps every event applied
/// before the one that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Not a JSON array of events in the wire format.
    #[error("the log is not a JSON array of events: {0}")]
    Decode(String),
    /// An event out of order or of another room.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl RoomState {
    /// Replays a JSON array of events from the empty state.
    pub fn replay_json(bytes: &[u8]) -> Result<RoomState, ReplayError> {
        let mut state = RoomState::new();
        // Nothing of it was ever saved: every chunk goes in its first snapshot.
        state.dirty.mark_all();
        state.apply_json(bytes)?;
        Ok(state)
    }

    /// Applies the events of a JSON array in order, each as it is decoded,
    /// and returns how many were applied.
    pub fn apply_json(&mut self, bytes: &[u8]) -> Result<usize, ReplayError> {
        let mut failed = None;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let seed = ApplyEach {
            state: self,
            failed: &mut failed,
        };
        let decoded = seed.deserialize(&mut de).and_then(|n| de.end().map(|()| n));
        match (decoded, failed) {
            (_, Some(e)) => Err(ReplayError::Apply(e)),
            (Ok(n), None) => Ok(n),
            (Err(e), None) => Err(ReplayError::Decode(e.to_string())),
        }
    }
}

/// Applies each element of a sequence of events to the state, as decoded.
struct ApplyEach<'a> {
    state: &'a mut RoomState,
    /// The apply error that stopped decoding, if one did.
    failed: &'a mut Option<ApplyError>,
}

impl<'de> DeserializeSeed<'de> for ApplyEach<'_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ApplyEach<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut applied = 0;
        while let Some(event) = seq.next_element::<ChatEvent>()? {
            if let Err(e) = self.state.apply(event) {
                *self.failed = Some(e);
                return Err(de::Error::custom("an event does not apply"));
            }
            applied += 1;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, Timestamp};
    use uuid::Uuid;

    fn event(seq: u64, kind: EventKind) -> ChatEvent {
        ChatEvent {
            event_id: Uuid::from_u128(seq.into()),
            room_id: "r".into(),
            seq,
            sender_id: "alice".into(),
            timestamp: Timestamp::from_millis(seq as i64).unwrap(),
            kind,
        }
    }

    fn log() -> Vec<ChatEvent> {
        vec![
            event(1, EventKind::RoomCreated { name: "R".into() }),
            event(
                2,
                EventKind::MessageSent {
                    content: "hi \"there\" \u{e9}".into(),
                },
            ),
            event(
                3,
                EventKind::MessageSent {
                    content: "two".into(),
                },
            ),
            event(
                4,
                EventKind::MessageDeleted {
                    message_id: Uuid::from_u128(2),
                },
            ),
        ]
    }

    #[test]
    fn equals_replaying_the_decoded_events() {
        let json = serde_json::to_vec(&log()).unwrap();
        let state = RoomState::replay_json(&json).unwrap();
        assert_eq!(state, RoomState::replay(log()).unwrap());
        assert_eq!(state.message_count(), 1);
        let mut again = RoomState::new();
        assert_eq!(again.apply_json(b" [ ] ").unwrap(), 0);
        assert_eq!(again.apply_json(&json).unwrap(), 4);
        assert_eq!(again, state);
    }

    #[test]
    fn malformed_input_is_a_decode_error_and_keeps_what_was_applied() {
        let json = serde_json::to_string(&log()).unwrap();
        for bad in [
            "",
            "{}",
            "[1]",
            &json[..json.len() - 1],
            &format!("{json} trailing"),
            &json.replace("MESSAGE_DELETED", "MESSAGE_SHOUTED"),
        ] {
            match RoomState::replay_json(bad.as_bytes()) {
                Err(ReplayError::Decode(_)) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let mut state = RoomState::new();
        let cut = json.replace("MESSAGE_DELETED", "MESSAGE_SHOUTED");
        assert!(state.apply_json(cut.as_bytes()).is_err());
        assert_eq!(state.last_seq(), 3, "the events before the bad one stay");
    }

    #[test]
    fn an_event_out_of_order_is_an_apply_error() {
        let mut events = log();
        events.swap(2, 3);
        let json = serde_json::to_vec(&events).unwrap();
        assert_eq!(
            RoomState::replay_json(&json),
            Err(ReplayError::Apply(ApplyError::Gap {
                expected: 3,
                got: 4
            }))
        );
    }
}
