//! The OpenAPI 3 description served at `/api/openapi.json`, built from the
//! route table of this crate (kept next to `routes::router`).

use serde_json::{json, Value};

fn op(summary: &str, ok: &str) -> Value {
    json!({
        "summary": summary,
        "responses": {
            ok: {"description": "success"},
            "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    })
}

pub fn document() -> Value {
    let bearer = json!([{"bearer": []}]);
    let secured = |mut v: Value| {
        v["security"] = bearer.clone();
        v
    };
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Event-sourced chat", "version": "1"},
        "paths": {
            "/api/users": {"post": op("Create a user", "201")},
            "/api/sessions": {"post": op("Sign in: a bearer token", "200")},
            "/api/sessions/current": {"delete": secured(op("Sign out; the token stops working", "204"))},
            "/api/rooms": {
                "get": secured(op("Rooms, oldest first", "200")),
                "post": secured(op("Create a room (appends ROOM_CREATED)", "201"))
            },
            "/api/rooms/{roomId}": {"get": secured(op("One room", "200"))},
            "/api/rooms/{roomId}/events": {
                "get": secured(op("Events with seq > afterSeq (afterSeq, limit ≤ 5000)", "200")),
                "post": secured(op("Append an event (idempotent by eventId; expectedSeq)", "201"))
            },
            "/api/rooms/{roomId}/messages": {"get": secured(op("Projection page (limit ≤ 500, beforeSeq), or time travel (atSeq | at)", "200"))},
            "/api/rooms/{roomId}/snapshot": {"get": secured(op("Latest snapshot with seq ≤ atSeq", "200"))},
            "/api/rooms/{roomId}/ws": {"get": secured(op("WebSocket: backlog then live events; submit frames (token may be a query parameter)", "101"))},
            "/healthz": {"get": op("Health of the store and the bus", "200")},
            "/metrics": {"get": op("Prometheus metrics", "200")},
            "/api/openapi.json": {"get": op("This document", "200")}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "code": {"type": "string"}, "message": {"type": "string"}}}}
                }
            }
        }
    })
}
