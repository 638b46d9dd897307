//! The browser app (Leptos, CSR). For now a placeholder that builds; the app
//! replays rooms with the domain crate's reducer.

fn main() {}
