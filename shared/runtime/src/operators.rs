//! Who may use a service's admin routes, and who did: `ADMIN_TOKENS` (`name=token,...`) names the
//! operators, an admin route takes `Authorization: Bearer <token>`, and the [`Operator`] extractor
//! turns the token into the [`Actor`] the route records in its event. A missing or unknown token is
//! 401 before the body is read, so nothing is stored.
//!
//! A service with no `ADMIN_TOKENS` does not start unless it is given `--insecure-admin`: then the
//! admin routes are open and their actor is `anonymous` (see [`crate::service::ServiceError`]).

use crate::api_error::ApiError;
use crate::service::Runtime;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jetsaga_contracts::Actor;
use std::fmt;
use std::str::FromStr;

/// A token shorter than this is refused at start-up: a guessable token is no credential.
pub const MIN_TOKEN_LEN: usize = 16;

/// The operators a service admits, each a name and a secret token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Operators(Vec<(Actor, String)>);

/// Tokens stay out of logs and `Debug` output.
impl fmt::Debug for Operators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name.as_str()))
            .finish()
    }
}

/// Why `ADMIN_TOKENS` could not be read. The token itself is never in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorsError {
    #[error("ADMIN_TOKENS entry {position} is not `name=token`")]
    NotAPair { position: usize },
    #[error("ADMIN_TOKENS entry {position}: {source}")]
    BadName {
        position: usize,
        #[source]
        source: jetsaga_contracts::InvalidKey,
    },
    #[error("ADMIN_TOKENS entry {position} ({name}): the token has fewer than {MIN_TOKEN_LEN} characters")]
    ShortToken { position: usize, name: String },
    #[error("ADMIN_TOKENS names operator {name} twice")]
    DuplicateName { name: String },
    #[error("ADMIN_TOKENS gives operators {first} and {second} the same token")]
    DuplicateToken { first: String, second: String },
    #[error("ADMIN_TOKENS names no operator")]
    Empty,
}

impl FromStr for Operators {
    type Err = OperatorsError;

    /// `name=token` pairs separated by commas; white space around each part is ignored.
    fn from_str(s: &str) -> Result<Self, OperatorsError> {
        let mut operators: Vec<(Actor, String)> = Vec::new();
        for (i, entry) in s
            .split(',')
            .enumerate()
            .filter(|(_, e)| !e.trim().is_empty())
        {
            let position = i + 1;
            let (name, token) = entry
                .split_once('=')
                .ok_or(OperatorsError::NotAPair { position })?;
            let name = Actor::parse(name.trim())
                .map_err(|source| OperatorsError::BadName { position, source })?;
            let token = token.trim();
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(OperatorsError::ShortToken {
                    position,
                    name: name.to_string(),
                });
            }
            for (other, other_token) in &operators {
                if *other == name {
                    return Err(OperatorsError::DuplicateName {
                        name: name.to_string(),
                    });
                }
                if other_token == token {
                    return Err(OperatorsError::DuplicateToken {
                        first: other.to_string(),
                        second: name.to_string(),
                    });
                }
            }
            operators.push((name, token.to_owned()));
        }
        if operators.is_empty() {
            return Err(OperatorsError::Empty);
        }
        Ok(Operators(operators))
    }
}

impl Operators {
    /// One operator, e.g. the `dev` operator of `jetsaga dev` or a test's.
    pub fn single(name: Actor, token: impl Into<String>) -> Operators {
        Operators(vec![(name, token.into())])
    }

    /// The operator whose token this is. Every entry is compared in full, in constant time, so the
    /// answer's timing tells nothing about the tokens.
    pub fn who(&self, token: &str) -> Option<&Actor> {
        let mut found = None;
        for (name, known) in &self.0 {
            if constant_time_eq(known.as_bytes(), token.as_bytes()) {
                found = Some(name);
            }
        }
        found
    }

    /// The first of these operators whose token is also one of `others`' (each compared in
    /// constant time), e.g. an operator who is also listed as a viewer.
    pub fn sharing_a_token_with(&self, others: &Operators) -> Option<&Actor> {
        self.0
            .iter()
            .find(|(_, token)| others.who(token).is_some())
            .map(|(name, _)| name)
    }

    /// The operators' names, for the start-up log.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a service admits admin requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AdminAccess {
    /// Only the named operators, by token.
    Operators(Operators),
    /// Anyone, as `anonymous` (`--insecure-admin`).
    Insecure,
    /// Neither was configured: the service refuses to start.
    #[default]
    Unset,
    /// `ADMIN_TOKENS` could not be read: the service refuses to start, saying why.
    Invalid(OperatorsError),
}

impl AdminAccess {
    /// The actor of a request with this `Authorization` header, or the refusal.
    pub fn authorize(&self, authorization: Option<&HeaderValue>) -> Result<Actor, Unauthorized> {
        match self {
            AdminAccess::Insecure => Ok(Actor::anonymous()),
            AdminAccess::Unset | AdminAccess::Invalid(_) => Err(Unauthorized::NoOperators),
            AdminAccess::Operators(operators) => {
                let value = authorization.ok_or(Unauthorized::Missing)?;
                let token = value
                    .to_str()
                    .ok()
                    .and_then(bearer_token)
                    .ok_or(Unauthorized::NotBearer)?;
                operators.who(token).cloned().ok_or(Unauthorized::Unknown)
            }
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive): how the services and the
/// console read an `Authorization` header.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why an admin request was refused: 401, `{"error": "unauthorized"}`, nothing stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    #[error("this admin route needs `Authorization: Bearer <token>` with an operator's token")]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("the token is not one of this service's ADMIN_TOKENS")]
    Unknown,
    #[error("this service has no operators configured")]
    NoOperators,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", self.to_string())
                .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"jetsaga admin\""),
        );
        response
    }
}

/// The operator making an admin request; an admin handler takes it as its first argument, so a
/// request without a valid token is refused before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(pub Actor);

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    Runtime: FromRef<S>,
{
    type Rejection = Unauthorized;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Unauthorized> {
        let rt = Runtime::from_ref(state);
        let result = rt
            .settings
            .admin
            .authorize(parts.headers.get(header::AUTHORIZATION));
        if let Err(e) = &result {
            tracing::warn!(service = rt.service, path = %parts.uri.path(), reason = %e, "admin request refused");
        }
        result.map(Operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-token-0123456789";
    const BOB: &str = "bob-token-0123456789ab";

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn admin_tokens_name_each_operator_and_their_token() {
        let ops: Operators = format!(" alice={ALICE} , bob={BOB},").parse().unwrap();
        assert_eq!(ops.names(), ["alice", "bob"]);
        assert_eq!(ops.who(BOB).map(Actor::as_str), Some("bob"));
        assert_eq!(ops.who("bob-token"), None);
        assert!(
            !format!("{ops:?}").contains(ALICE),
            "a token in Debug output"
        );
    }

    #[test]
    fn bad_admin_tokens_are_refused_with_the_entry_that_is_wrong() {
        let cases = [
            ("", OperatorsError::Empty),
            ("alice", OperatorsError::NotAPair { position: 1 }),
            (
                "alice=short",
                OperatorsError::ShortToken {
                    position: 1,
                    name: "alice".into(),
                },
            ),
            (
                &format!("alice={ALICE},alice={BOB}"),
                OperatorsError::DuplicateName {
                    name: "alice".into(),
                },
            ),
            (
                &format!("alice={ALICE},bob={ALICE}"),
                OperatorsError::DuplicateToken {
                    first: "alice".into(),
                    second: "bob".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<Operators>().unwrap_err(),
                expected,
                "{input:?}"
            );
        }
        let bad_name = format!("ops.alice={ALICE}")
            .parse::<Operators>()
            .unwrap_err();
        assert!(matches!(
            bad_name,
            OperatorsError::BadName { position: 1, .. }
        ));
        assert!(!bad_name.to_string().contains(ALICE));
    }

    #[test]
    fn a_request_is_its_operators_only_with_that_operators_bearer_token() {
        let access = AdminAccess::Operators(format!("alice={ALICE},bob={BOB}").parse().unwrap());
        let ok = access.authorize(Some(&header(&format!("Bearer {BOB}"))));
        assert_eq!(ok.unwrap().as_str(), "bob");
        let lower = access.authorize(Some(&header(&format!("bearer {ALICE}"))));
        assert_eq!(lower.unwrap().as_str(), "alice");
        assert_eq!(access.authorize(None), Err(Unauthorized::Missing));
        assert_eq!(
            access.authorize(Some(&header(&format!("Basic {ALICE}")))),
            Err(Unauthorized::NotBearer)
        );
        assert_eq!(
            access.authorize(Some(&header("Bearer nobody-0123456789abcdef"))),
            Err(Unauthorized::Unknown)
        );
    }

    #[test]
    fn insecure_admin_lets_anyone_in_as_anonymous_and_unset_lets_no_one_in() {
        assert_eq!(
            AdminAccess::Insecure.authorize(None).unwrap(),
            Actor::anonymous()
        );
        assert_eq!(
            AdminAccess::Unset.authorize(Some(&header(&format!("Bearer {ALICE}")))),
            Err(Unauthorized::NoOperators)
        );
    }
}
