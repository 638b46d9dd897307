//! The reactions on one message: which users reacted with which emoji.

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Emoji → users who reacted with it. An emoji with no users is absent.
///
/// Kept as one sorted vector of `(emoji, user)` pairs behind a pointer: most
/// messages have no reaction (8 bytes in the message, no allocation) and the
/// rest a handful, so a pair costs 48 bytes here against several hundred for
/// the leaf nodes of a map of sets. Serialized as a map from emoji to its
/// sorted users.
// The box is the point: 8 bytes in every message instead of a 24-byte `Vec`.
#[allow(clippy::box_collection)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reactions(Option<Box<Vec<Pair>>>);

type Pair = (CompactString, CompactString);

impl Reactions {
    pub fn new() -> Self {
        Self::default()
    }

    fn pairs(&self) -> &[Pair] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Whether no user reacted at all.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    fn find(&self, emoji: &str, user: &str) -> Result<usize, usize> {
        self.pairs()
            .binary_search_by(|(e, u)| (e.as_str(), u.as_str()).cmp(&(emoji, user)))
    }

    /// Records `user`'s `emoji`; `false` if it was already there.
    pub fn add(&mut self, emoji: CompactString, user: CompactString) -> bool {
        match self.find(&emoji, &user) {
            Ok(_) => false,
            Err(at) => {
                self.0.get_or_insert_default().insert(at, (emoji, user));
                true
            }
        }
    }

    /// Removes `user`'s `emoji`; `false` if it was not there.
    pub fn remove(&mut self, emoji: &str, user: &str) -> bool {
        let Ok(at) = self.find(emoji, user) else {
            return false;
        };
        if let Some(pairs) = &mut self.0 {
            pairs.remove(at);
            if pairs.is_empty() {
                self.0 = None;
            }
        }
        true
    }

    /// The users who reacted with `emoji`, sorted.
    pub fn users<'a>(&'a self, emoji: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let pairs = self.pairs();
        let from = pairs.partition_point(|(e, _)| e.as_str() < emoji);
        pairs[from..]
            .iter()
            .take_while(move |(e, _)| e == emoji)
            .map(|(_, u)| u.as_str())
    }

    /// Each emoji with its users, both sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str>)> {
        self.pairs()
            .chunk_by(|a, b| a.0 == b.0)
            .map(|group| (group[0].0.as_str(), group.iter().map(|(_, u)| u.as_str())))
    }
}

impl Serialize for Reactions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let groups = self.pairs().chunk_by(|a, b| a.0 == b.0);
        let mut map = s.serialize_map(Some(groups.clone().count()))?;
        for group in groups {
            let users: Vec<&str> = group.iter().map(|(_, u)| u.as_str()).collect();
            map.serialize_entry(group[0].0.as_str(), &users)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Reactions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ReactionsVisitor;
        impl<'de> Visitor<'de> for ReactionsVisitor {
            type Value = Reactions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from emoji to users")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reactions, A::Error> {
                let mut pairs = Vec::new();
                while let Some((emoji, users)) =
                    map.next_entry::<CompactString, Vec<CompactString>>()?
                {
                    pairs.extend(users.into_iter().map(|u| (emoji.clone(), u)));
                }
                pairs.sort_unstable();
                pairs.dedup();
                Ok(Reactions((!pairs.is_empty()).then(|| Box::new(pairs))))
            }
        }
        d.deserialize_map(ReactionsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouped(r: &Reactions) -> Vec<(String, Vec<String>)> {
        r.iter()
            .map(|(e, us)| (e.to_owned(), us.map(str::to_owned).collect()))
            .collect()
    }

    #[test]
    fn keeps_each_emoji_with_sorted_users_and_drops_empty_ones() {
        let mut r = Reactions::new();
        assert!(r.add("🎉".into(), "carol".into()));
        assert!(r.add("👍".into(), "bob".into()));
        assert!(r.add("🎉".into(), "alice".into()));
        assert!(!r.add("👍".into(), "bob".into()), "once per user and emoji");
        assert_eq!(
            grouped(&r),
            vec![
                ("🎉".into(), vec!["alice".into(), "carol".into()]),
                ("👍".into(), vec!["bob".into()]),
            ]
        );
        assert_eq!(r.users("🎉").collect::<Vec<_>>(), ["alice", "carol"]);
        assert!(!r.remove("👍", "alice"));
        assert!(r.remove("👍", "bob"));
        assert_eq!(r.users("👍").count(), 0);
        assert_eq!(grouped(&r).len(), 1);
        assert!(r.remove("🎉", "alice") && r.remove("🎉", "carol"));
        assert!(r.is_empty());
    }

    #[test]
    fn serializes_as_a_map_of_sorted_users() {
        let mut r = Reactions::new();
        r.add("👍".into(), "bob".into());
        r.add("👍".into(), "alice".into());
        r.add("❤️".into(), "bob".into());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"❤️":["bob"],"👍":["alice","bob"]}"#);
        let back: Reactions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let messy: Reactions =
            serde_json::from_str(r#"{"👍":["bob","alice","bob"],"🎉":[]}"#).unwrap();
        assert_eq!(messy, back_without_heart(&r));
    }

    fn back_without_heart(r: &Reactions) -> Reactions {
        let mut r = r.clone();
        r.remove("❤️", "bob");
        r
    }
}
