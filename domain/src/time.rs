//! Event time: milliseconds since the Unix epoch, written on the wire as RFC 3339
//! UTC with exactly three fractional digits (`2026-11-25T08:00:00.123Z`).
//! The domain never reads a clock; times come from the server (or, for
//! pending events in the browser, from the caller).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::num::NonZeroI64;

/// A point in time with millisecond precision, UTC.
///
/// Stored as milliseconds since year 0000 plus one: never zero, so an
/// `Option<Timestamp>` (a message's `editedAt`) takes 8 bytes, not 16, and
/// the order is that of the instants.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NonZeroI64);

impl Timestamp {
    /// Latest representable time that RFC 3339 can still write (year 9999).
    const MAX_MILLIS: i64 = 253_402_300_799_999;
    /// Earliest (year 0000).
    const MIN_MILLIS: i64 = -62_167_219_200_000;

    /// From milliseconds since the Unix epoch; `None` outside years 0000–9999.
    pub fn from_millis(ms: i64) -> Option<Self> {
        if !(Self::MIN_MILLIS..=Self::MAX_MILLIS).contains(&ms) {
            return None;
        }
        NonZeroI64::new(ms - Self::MIN_MILLIS + 1).map(Timestamp)
    }

    pub fn as_millis(self) -> i64 {
        self.0.get() + Self::MIN_MILLIS - 1
    }

    /// Parses any RFC 3339 time (any offset, any precision). Sub-millisecond
    /// digits are truncated toward the past, so `t.parse()` ≤ the real instant
    /// and "events with timestamp ≤ t" keeps its meaning.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = DateTime::parse_from_rfc3339(s).ok()?;
        Self::from_millis(dt.timestamp_millis())
    }

    /// Any RFC 3339 time, as a point to look up: one outside the years
    /// 0000–9999 once in UTC (such as `0000-01-01T00:00:00+01:00`) reads as
    /// the earliest or latest time kept, which selects the same events.
    pub fn parse_rfc3339_clamped(s: &str) -> Option<Self> {
        let ms = DateTime::parse_from_rfc3339(s).ok()?.timestamp_millis();
        Self::from_millis(ms.clamp(Self::MIN_MILLIS, Self::MAX_MILLIS))
    }

    /// From a chrono time (the server's clock), truncated to milliseconds.
    pub fn from_datetime(dt: DateTime<Utc>) -> Option<Self> {
        Self::from_millis(dt.timestamp_millis())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.as_millis())
            .single()
            .expect("range checked at construction")
    }

    /// The contract's form: RFC 3339, UTC, milliseconds, `Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_the_kept_years_still_read() {
        assert_eq!(
            Timestamp::parse_rfc3339_clamped("0000-01-01T00:00:00+01:00").unwrap(),
            Timestamp::parse_rfc3339("0000-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            Timestamp::parse_rfc3339_clamped("9999-12-31T23:59:59-01:00").unwrap(),
            Timestamp::parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap()
        );
        assert!(Timestamp::parse_rfc3339_clamped("2026-11-25t08:00:00.5z").is_some());
        assert!(Timestamp::parse_rfc3339_clamped("2016-12-31T23:59:60Z").is_some());
        assert!(Timestamp::parse_rfc3339_clamped("").is_none());
        assert!(Timestamp::parse_rfc3339_clamped("yesterday").is_none());
    }

    #[test]
    fn writes_utc_with_milliseconds() {
        let t = Timestamp::parse_rfc3339("2026-11-25T09:00:00.123456+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T08:00:00.123Z");
        let t = Timestamp::parse_rfc3339("2026-11-25T08:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T08:00:00.000Z");
    }

    #[test]
    fn keeps_millis_and_order_across_the_whole_range_in_eight_bytes() {
        assert_eq!(std::mem::size_of::<Option<Timestamp>>(), 8);
        let edges = [
            Timestamp::MIN_MILLIS,
            -1,
            0,
            1,
            1_795_000_000_000,
            Timestamp::MAX_MILLIS,
        ];
        let ts: Vec<Timestamp> = edges
            .iter()
            .map(|&ms| Timestamp::from_millis(ms).unwrap())
            .collect();
        for (t, &ms) in ts.iter().zip(&edges) {
            assert_eq!(t.as_millis(), ms);
        }
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ts[0].to_rfc3339(), "0000-01-01T00:00:00.000Z");
        assert_eq!(ts[2].to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert!(Timestamp::from_millis(Timestamp::MIN_MILLIS - 1).is_none());
        assert!(Timestamp::from_millis(Timestamp::MAX_MILLIS + 1).is_none());
    }

    #[test]
    fn truncates_toward_the_past() {
        let a = Timestamp::parse_rfc3339("2026-11-25T08:00:00.1239Z").unwrap();
        let b = Timestamp::parse_rfc3339("2026-11-25T08:00:00.123Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn refuses_non_rfc3339() {
        for s in [
            "",
            "yesterday",
            "2026-11-25",
            "08:00:00Z",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let t = Timestamp::from_millis(1_795_000_000_123).unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), t);
    }
}
