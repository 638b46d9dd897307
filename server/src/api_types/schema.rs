//! The contract's constraints as JSON Schema: id, UUID, time and not-blank
//! patterns (ECMA-262), and the schema pieces the bodies and queries share.

use domain::validation::{ID_MAX, PASSWORD_MAX, PASSWORD_MIN, ROOM_NAME_MAX};
use utoipa::openapi::schema::{
    KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// A user id or room id: `^[A-Za-z0-9_.-]{1,32}$`, and not `.` or `..`
/// (what `domain::validation::validate_id` checks).
pub const ID_PATTERN: &str = r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,32}$";

/// A UUID in the 36-character hyphenated form, any case (what
/// `domain::event::parse_uuid` reads).
pub const UUID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// A UUID as the server writes it: hyphenated, lowercase.
pub const LOWER_UUID_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// Not blank: at least one character outside Unicode `White_Space`, the set
/// `str::trim` removes before the domain's emptiness check. Spelled out
/// because ECMA's `\s` differs from it (it has U+FEFF and lacks U+0085).
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// A time as the server writes it: RFC 3339, UTC, milliseconds.
pub const TIME_PATTERN: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$";

pub(super) fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub(super) fn nullable(t: Type) -> SchemaType {
    SchemaType::Array(vec![t, Type::Null])
}

pub(super) fn id_schema() -> Object {
    string()
        .pattern(Some(ID_PATTERN))
        .min_length(Some(1))
        .max_length(Some(ID_MAX))
        .description(Some(
            "1 to 32 of A-Z a-z 0-9 _ . - (not `.` or `..`); case-sensitive",
        ))
        .examples(["general"])
        .build()
}

pub(super) fn password_schema() -> Object {
    string()
        .min_length(Some(PASSWORD_MIN))
        .max_length(Some(PASSWORD_MAX))
        .description(Some("8 to 1024 characters (Unicode scalar values)"))
        .build()
}

/// Text the domain checks with `validate_text`: present, not blank after
/// trimming Unicode white space, at most `max` Unicode scalar values.
pub(super) fn text_schema(max: usize) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK_PATTERN))
}

pub(super) fn room_name_schema() -> Object {
    text_schema(ROOM_NAME_MAX)
        .description(Some(
            "1 to 100 characters, not blank (empty after trimming Unicode white space)",
        ))
        .build()
}

pub(super) fn uuid_schema() -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID_PATTERN))
}

pub(super) fn lower_uuid_schema() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(LOWER_UUID_PATTERN))
        .build()
}

pub(super) fn nullable_lower_uuid_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(LOWER_UUID_PATTERN))
        .build()
}

pub(super) fn time_schema() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(TIME_PATTERN))
        .build()
}

pub(super) fn nullable_time_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .pattern(Some(TIME_PATTERN))
        .build()
}

/// The schema of a seq or count in a query string: any non-negative
/// integer. No upper bound and no `int64` format: larger values read as the
/// largest (and clamp).
pub struct NonNegativeInteger;

impl PartialSchema for NonNegativeInteger {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .description(Some(
                "Decimal digits; values beyond 2^64-1 read as the largest.",
            ))
            .into()
    }
}

impl ToSchema for NonNegativeInteger {}

/// The schema of a user or room id in a path.
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        id_schema().into()
    }
}

impl ToSchema for Id {}

/// A place in the room list: `{createdAt in ms}.{roomId}` (the list's
/// order), as `nextAfter` gives it. Any such place is valid, whether or not
/// a room is there.
pub struct RoomCursor;

/// The cursor's pattern.
pub const ROOM_CURSOR_PATTERN: &str = r"^-?[0-9]{1,16}\.(?!\.\.?$)[A-Za-z0-9_.-]{1,32}$";

impl RoomCursor {
    /// The cursor of a room.
    pub fn of(created_ms: i64, room_id: &str) -> String {
        format!("{created_ms}.{room_id}")
    }

    /// The place a cursor names; `None` when it is not one.
    pub fn parse(s: &str) -> Option<(i64, String)> {
        let (ms, room) = s.split_once('.')?;
        let ms: i64 = ms.parse().ok()?;
        domain::validation::validate_id("after", room).ok()?;
        Some((ms, room.to_owned()))
    }
}

impl PartialSchema for RoomCursor {
    fn schema() -> RefOr<Schema> {
        string()
            .pattern(Some(ROOM_CURSOR_PATTERN))
            .description(Some(
                "A place in the list, as `nextAfter` gives it: `{createdAt in ms}.{roomId}`",
            ))
            .into()
    }
}

impl ToSchema for RoomCursor {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_not_blank_pattern_names_exactly_what_trim_removes() {
        // Every char `char::is_whitespace` accepts is in the pattern's class.
        let class: Vec<char> = {
            let mut v = vec!['\t', '\n', '\u{b}', '\u{c}', '\r', ' '];
            v.extend(['\u{85}', '\u{a0}', '\u{1680}']);
            v.extend('\u{2000}'..='\u{200a}');
            v.extend(['\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}']);
            v
        };
        let all: Vec<char> = (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(all, class);
        assert!(NOT_BLANK_PATTERN.contains(r"\t-\r \u0085\u00A0\u1680\u2000-\u200A"));
    }
}
