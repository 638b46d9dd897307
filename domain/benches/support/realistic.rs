//! The benchmark input: a deterministic, valid, realistic log of one room.
//! Shared by the criterion benchmark and the `replay_costs` example.

use domain::{ChatEvent, EventKind, Timestamp};
use uuid::Uuid;

const USERS: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// xorshift64*: deterministic, good enough to pick actions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A valid log of `n` events: ~62% sends, 8% edits, 5% deletes, 15% reads,
/// 7% reactions added, 3% removed; targets mostly among recent messages.
pub fn realistic_log(n: usize) -> Vec<ChatEvent> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(Uuid, usize)> = Vec::new();
    let mut reacted: Vec<(Uuid, usize, &'static str)> = Vec::new();
    let mut events = Vec::with_capacity(n);
    let t0 = 1_795_000_000_000i64;
    let texts = [
        "hello everyone",
        "did you see the release notes? the new replay path is much faster",
        "ok",
        "lunch at noon?",
        "I think we should split the snapshot into chunks so it never grows unbounded",
    ];
    let emoji = ["👍", "🎉", "❤️", "😂"];
    for seq in 1..=n as u64 {
        let user = rng.below(USERS.len());
        let pick = rng.below(100);
        let recent = |rng: &mut Rng, live: &Vec<(Uuid, usize)>| {
            let window = live.len().min(500);
            live.len() - 1 - rng.below(window)
        };
        let (sender, kind) = if seq == 1 {
            (
                0,
                EventKind::RoomCreated {
                    name: "Benchmark".into(),
                },
            )
        } else if pick < 62 || live.is_empty() {
            (
                user,
                EventKind::MessageSent {
                    content: texts[rng.below(texts.len())].into(),
                },
            )
        } else if pick < 70 {
            let (id, owner) = live[recent(&mut rng, &live)];
            (
                owner,
                EventKind::MessageEdited {
                    message_id: id,
                    content: format!("edited {seq}").into(),
                },
            )
        } else if pick < 75 {
            let i = recent(&mut rng, &live);
            let (id, owner) = live.remove(i);
            (owner, EventKind::MessageDeleted { message_id: id })
        } else if pick < 90 {
            let (id, _) = live[recent(&mut rng, &live)];
            (user, EventKind::MessageRead { message_id: id })
        } else if pick < 97 || reacted.is_empty() {
            let (id, _) = live[recent(&mut rng, &live)];
            let e = emoji[rng.below(emoji.len())];
            reacted.push((id, user, e));
            (
                user,
                EventKind::ReactionAdded {
                    message_id: id,
                    emoji: e.into(),
                },
            )
        } else {
            let (id, who, e) = reacted.swap_remove(rng.below(reacted.len()));
            (
                who,
                EventKind::ReactionRemoved {
                    message_id: id,
                    emoji: e.into(),
                },
            )
        };
        let event_id = Uuid::from_u64_pair(rng.next(), seq);
        if let EventKind::MessageSent { .. } = kind {
            live.push((event_id, sender));
        }
        events.push(ChatEvent {
            event_id,
            room_id: "bench".into(),
            seq,
            sender_id: USERS[sender].into(),
            timestamp: Timestamp::from_millis(t0 + seq as i64 * 7).unwrap(),
            kind,
        });
    }
    events
}
