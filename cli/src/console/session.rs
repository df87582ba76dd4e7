//! Who is using the console: operators (`ADMIN_TOKENS`, role `operator`, may act) and viewers
//! (`VIEWER_TOKENS`, role `viewer`, may look), both read by the services' own parser
//! ([`Operators`]). A person signs in with their token (`POST /api/session`) and gets a session
//! cookie: a random id, `HttpOnly; SameSite=Strict`, so page scripts cannot read it and other
//! sites cannot send it. A program may instead send `Authorization: Bearer <token>` on each call.
//!
//! The extractors [`Signed`] (anyone signed in) and [`OperatorOnly`] (an operator) run before a
//! route reads its body, so a request without a session is 401 and a viewer's write is 403 before
//! anything is done.

use super::error::{ConsoleError, ConsoleResult};
use super::Shared;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jetsaga_contracts::Actor;
use jetsaga_runtime::operators::{bearer_token, Operators};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "jetsaga_console";

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Looks: every read, and a reconcile check.
    Viewer,
    /// Looks and acts: requeue, discard, repair.
    Operator,
}

/// A signed-in person: the name their actions are recorded under, and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Who {
    pub name: String,
    pub role: Role,
}

impl Who {
    /// The actor recorded for this person's actions.
    pub fn actor(&self) -> Result<Actor, ConsoleError> {
        Actor::parse(&self.name)
            .map_err(|e| ConsoleError::bad_request("bad_operator", e.to_string()))
    }
}

/// Who may sign in.
#[derive(Debug, Clone)]
pub enum Access {
    /// Operators and viewers, each with a name and a token.
    Tokens {
        operators: Option<Operators>,
        viewers: Option<Operators>,
    },
    /// No operators configured, by choice (`--insecure-admin`): everyone is operator `anonymous`.
    Insecure,
}

impl Access {
    /// The person a token belongs to. Both lists are searched in full whatever the token, each
    /// comparison in constant time, so the answer's timing tells nothing about the tokens.
    pub fn who(&self, token: &str) -> Option<Who> {
        match self {
            Access::Insecure => Some(anonymous()),
            Access::Tokens { operators, viewers } => {
                let operator = operators.as_ref().and_then(|o| o.who(token)).cloned();
                let viewer = viewers.as_ref().and_then(|v| v.who(token)).cloned();
                match (operator, viewer) {
                    (Some(name), _) => Some(Who {
                        name: name.to_string(),
                        role: Role::Operator,
                    }),
                    (None, Some(name)) => Some(Who {
                        name: name.to_string(),
                        role: Role::Viewer,
                    }),
                    (None, None) => None,
                }
            }
        }
    }
}

fn anonymous() -> Who {
    Who {
        name: Actor::ANONYMOUS.to_owned(),
        role: Role::Operator,
    }
}

/// The sessions signed in, by id. Kept in memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, (Who, Instant)>>,
}

impl Sessions {
    /// A new session for `who`; returns its id (256 random bits, hex).
    pub fn open(&self, who: Who) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        open.retain(|_, (_, since)| now.duration_since(*since) < SESSION_LIFETIME);
        open.insert(id.clone(), (who, now));
        id
    }

    /// The person of a live session.
    pub fn get(&self, id: &str) -> Option<Who> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(id)
            .filter(|(_, since)| since.elapsed() < SESSION_LIFETIME)
            .map(|(who, _)| who.clone())
    }

    pub fn close(&self, id: &str) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(id);
    }
}

/// The session id in the request's cookies.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// The token of `Authorization: Bearer <token>`, read as the services read it.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The person making the request: their session, their bearer token, or anyone on an insecure
/// console.
pub fn identify(state: &Shared, headers: &HeaderMap) -> Option<Who> {
    if let Access::Insecure = state.access {
        return Some(anonymous());
    }
    if let Some(who) = session_id(headers).and_then(|id| state.sessions.get(&id)) {
        return Some(who);
    }
    bearer(headers).and_then(|token| state.access.who(token))
}

/// Anyone signed in (operator or viewer); 401 otherwise.
#[derive(Debug, Clone)]
pub struct Signed(pub Who);

impl FromRequestParts<Shared> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ConsoleResult<Self> {
        identify(state, &parts.headers)
            .map(Signed)
            .ok_or(ConsoleError::Unauthorized)
    }
}

/// An operator; 401 without a session, 403 for a viewer.
#[derive(Debug, Clone)]
pub struct OperatorOnly(pub Who);

impl FromRequestParts<Shared> for OperatorOnly {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> ConsoleResult<Self> {
        let who = identify(state, &parts.headers).ok_or(ConsoleError::Unauthorized)?;
        match who.role {
            Role::Operator => Ok(OperatorOnly(who)),
            Role::Viewer => Err(ConsoleError::Forbidden { name: who.name }),
        }
    }
}

/// `POST /api/session` `{"token"}`.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    pub token: String,
}

fn cookie(value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{age}"
    ))
    .expect("a session id is hex")
}

/// `POST /api/session`: signs in with a token; 401 for an unknown one.
pub async fn sign_in(
    State(state): State<Shared>,
    body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>,
) -> ConsoleResult<Response> {
    let Json(SignIn { token }) = body?;
    // A token pasted with a line break around it is still the token (the lists are trimmed too).
    let who = state
        .access
        .who(token.trim())
        .ok_or(ConsoleError::Unauthorized)?;
    let id = state.sessions.open(who.clone());
    let mut response = Json(&who).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&id, Some(SESSION_LIFETIME.as_secs())),
    );
    Ok(response)
}

/// `GET /api/session`: who is signed in.
pub async fn current(Signed(who): Signed) -> Json<Who> {
    Json(who)
}

/// `DELETE /api/session`: signs out (the session is forgotten, the cookie cleared); 401 without
/// a session, like every other route.
pub async fn sign_out(_: Signed, State(state): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        state.sessions.close(&id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", Some(0)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::Tokens {
            operators: Some("alice=alice-token-0123456789".parse().unwrap()),
            viewers: Some("victor=victor-token-0123456789".parse().unwrap()),
        }
    }

    #[test]
    fn a_token_names_an_operator_or_a_viewer_or_nobody() {
        let a = access();
        assert_eq!(
            a.who("alice-token-0123456789"),
            Some(Who {
                name: "alice".into(),
                role: Role::Operator
            })
        );
        assert_eq!(a.who("victor-token-0123456789").unwrap().role, Role::Viewer);
        assert_eq!(a.who("nobody-token-0123456789"), None);
        assert_eq!(a.who(""), None);
        assert_eq!(Access::Insecure.who("x").unwrap().name, "anonymous");
    }

    #[test]
    fn sessions_have_unguessable_ids_and_end_on_sign_out() {
        let sessions = Sessions::default();
        let who = Who {
            name: "alice".into(),
            role: Role::Operator,
        };
        let a = sessions.open(who.clone());
        let b = sessions.open(who.clone());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(sessions.get(&a), Some(who));
        sessions.close(&a);
        assert_eq!(sessions.get(&a), None);
        assert!(sessions.get(&b).is_some());
    }

    #[test]
    fn the_session_id_is_read_from_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; jetsaga_console=abc123; x=y"),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("abc123"));
    }
}
