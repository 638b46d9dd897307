//! The components, one concern each: the shell around the screens
//! ([`shell`]), signing in ([`auth`]), the top bar
//! with the connection status ([`topbar`]), the room list and the new-room
//! form ([`rooms`]), the open room ([`room`]) with its messages
//! ([`message`]), composer ([`composer`]) and time travel ([`travel`]).

pub mod auth;
pub mod composer;
pub mod message;
pub mod room;
pub mod rooms;
pub mod shell;
pub mod topbar;
pub mod travel;
