//! The signed-in session (token and user id), kept in storage so that it
//! survives a reload.

use crate::store::Store;
use serde::{Deserialize, Serialize};

const KEY: &str = "chat.session";

/// What `POST /api/sessions` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub token: String,
    pub user_id: String,
}

impl Session {
    /// The session saved by [`Session::save`], if any.
    pub fn load(store: &dyn Store) -> Option<Session> {
        serde_json::from_slice(store.get(KEY)?.as_bytes()).ok()
    }

    pub fn save(&self, store: &dyn Store) {
        if let Ok(json) = serde_json::to_string(self) {
            store.set(KEY, &json);
        }
    }

    pub fn forget(store: &dyn Store) {
        store.remove(KEY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_saved_session_loads_until_forgotten() {
        let store = MemoryStore::default();
        assert_eq!(Session::load(&store), None);
        let s = Session {
            token: "t0k".into(),
            user_id: "alice".into(),
        };
        s.save(&store);
        assert_eq!(Session::load(&store), Some(s));
        Session::forget(&store);
        assert_eq!(Session::load(&store), None);
        store.set(KEY, "not json");
        assert_eq!(Session::load(&store), None);
    }
}
