//! The OpenAPI 3.1 description served at `/api/openapi.json`: only its
//! assembly. Paths come from the `#[utoipa::path]` annotations on the
//! handlers, schemas from the request and response types of
//! `crate::api_types` that the handlers use.

use crate::api_types::{
    Event, EventPage, Health, MessageBody, MessagePage, NewEvent, NewRoom, RoomBody, RoomList,
    ServerFrame, Session, SignIn, SignUp, SnapshotBody, UserCreated, WireEventType,
};
use crate::error::{Code, ErrorBody, ErrorObject};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Event-sourced chat", version = "1", description = "The chat API (docs/api.md in the repository). \
        Every error answers `{\"error\": {\"code\", \"message\"}}` (ErrorBody). Lengths count Unicode \
        scalar values; blank means empty after trimming Unicode white space."),
    paths(
        crate::routes::users::create_user,
        crate::routes::users::sign_in,
        crate::routes::users::sign_out,
        crate::routes::rooms::create_room,
        crate::routes::rooms::list_rooms,
        crate::routes::rooms::get_room,
        crate::routes::rooms::post_event,
        crate::routes::rooms::get_events,
        crate::routes::rooms::get_messages,
        crate::routes::rooms::get_snapshot,
        crate::routes::ws::connect,
        crate::routes::ops::healthz,
        crate::routes::ops::metrics,
        crate::routes::ops::openapi,
    ),
    components(schemas(ErrorBody, ErrorObject, Code, SignUp, SignIn, UserCreated, Session, NewRoom,
        RoomBody, RoomList, WireEventType, Event, NewEvent, EventPage, MessageBody, MessagePage,
        SnapshotBody, ServerFrame, Health)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
