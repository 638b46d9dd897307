//! Input rules of the contract that do not depend on a room's state: id
//! format, password length, content limits. Lengths are Unicode scalar
//! values; "blank" means empty after trimming Unicode white space.

use crate::error::{ErrorCode, Refusal};

pub const MESSAGE_MAX: usize = 4000;
pub const EMOJI_MAX: usize = 16;
pub const ROOM_NAME_MAX: usize = 100;
pub const ID_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;

/// A user id or room id: `^[A-Za-z0-9_.-]{1,32}$`, and not `.` or `..`.
pub fn validate_id(what: &str, id: &str) -> Result<(), Refusal> {
    let ok = (1..=ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::InvalidId,
            format!("{what} must be 1 to {ID_MAX} of A-Z a-z 0-9 _ . - (and not . or ..)"),
        ))
    }
}

/// A password of 8 to 1024 characters.
pub fn validate_password(password: &str) -> Result<(), Refusal> {
    let n = password.chars().count();
    if (PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::InvalidId,
            format!("password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        ))
    }
}

/// Content that must be present, not blank, and at most `max` characters.
/// `what` names the field in the message ("content", "name", "emoji").
pub fn validate_text(what: &str, text: Option<&str>, max: usize) -> Result<(), Refusal> {
    let text = text.unwrap_or("");
    if text.trim().is_empty() {
        return Err(Refusal::new(
            ErrorCode::ContentEmpty,
            format!("{what} must not be empty"),
        ));
    }
    // Count no further than needed: bounded work even for huge strings.
    if text.chars().nth(max).is_some() {
        return Err(Refusal::new(
            ErrorCode::ContentTooLong,
            format!("{what} must be at most {max} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "alice", "A.b-c_9", &"x".repeat(32), "..."] {
            assert!(validate_id("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", &"x".repeat(33), "a b", "é", "a/b", "a\0"] {
            assert_eq!(
                validate_id("id", bad).unwrap_err().code,
                ErrorCode::InvalidId,
                "{bad}"
            );
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("éééééééé").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"é".repeat(1024)).is_ok());
        assert!(validate_password(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn text_limits() {
        assert_eq!(
            validate_text("c", None, 5).unwrap_err().code,
            ErrorCode::ContentEmpty
        );
        assert_eq!(
            validate_text("c", Some(""), 5).unwrap_err().code,
            ErrorCode::ContentEmpty
        );
        // U+3000 IDEOGRAPHIC SPACE and U+00A0 NO-BREAK SPACE are Unicode white space.
        assert_eq!(
            validate_text("c", Some(" \t\n\u{3000}\u{a0}"), 5)
                .unwrap_err()
                .code,
            ErrorCode::ContentEmpty
        );
        assert!(validate_text("c", Some("👍👍👍👍👍"), 5).is_ok());
        assert_eq!(
            validate_text("c", Some("👍👍👍👍👍👍"), 5)
                .unwrap_err()
                .code,
            ErrorCode::ContentTooLong
        );
    }
}
