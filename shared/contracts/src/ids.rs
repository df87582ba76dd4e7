//! Id newtypes, so an order id can never be passed where a customer id is expected, and validated
//! keys that are safe to put into a NATS subject token.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One order, and so one saga: it is the correlation id of every event of that saga.
    OrderId
);
uuid_id!(
    /// A customer: the owner of an account balance and of vouchers.
    CustomerId
);
uuid_id!(
    /// The stable id of one event: its `ce-id` and its `Nats-Msg-Id`.
    EventId
);

/// A key that is not a valid SKU or voucher code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: use 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_'")]
pub struct InvalidKey {
    pub what: &'static str,
    pub value: String,
}

/// Keys end up as the last token of a subject (`stock.adjusted.<sku>`), so they must not contain
/// `.`, `*`, `>` or white space. We allow a conservative alphabet rather than ban a list.
fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= KEY_MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidKey> {
                let s = s.into();
                if valid_key(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidKey { what: $what, value: s })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidKey;
            fn try_from(s: String) -> Result<Self, InvalidKey> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(k: $name) -> String {
                k.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": KEY_PATTERN,
                    "minLength": 1,
                    "maxLength": KEY_MAX_LEN,
                    "description": concat!("A ", $what, ": 1 to 64 characters of A-Z, a-z, 0-9, '-' or '_' (the last token of a subject)."),
                })
            }
        }
    };
}

/// What [`valid_key`] accepts, as a JSON Schema pattern.
pub const KEY_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";
/// The longest key.
pub const KEY_MAX_LEN: usize = 64;

key_type!(
    /// A stock keeping unit, e.g. `SKU-42`.
    Sku,
    "sku"
);
key_type!(
    /// A voucher code, e.g. `WELCOME10`.
    VoucherCode,
    "voucher code"
);
key_type!(
    /// The operator whose credential made an admin change: the name of an `ADMIN_TOKENS` entry,
    /// recorded in the change's event so the streams are the audit log.
    Actor,
    "operator name"
);

impl Actor {
    /// The actor of a change made while admin routes were open (`--insecure-admin`), and of the
    /// admin events written before changes carried one.
    pub const ANONYMOUS: &'static str = "anonymous";

    pub fn anonymous() -> Actor {
        Actor(Self::ANONYMOUS.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_refuse_subject_metacharacters() {
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Sku::parse("SKU-1_a").unwrap().as_str(), "SKU-1_a");
        assert!(serde_json::from_str::<VoucherCode>("\"a.b\"").is_err());
        assert!(Actor::parse("ops.alice").is_err());
        assert_eq!(Actor::anonymous().as_str(), "anonymous");
    }

    #[test]
    fn ids_round_trip_as_plain_uuids() {
        let id = OrderId::new_random();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<OrderId>(&json).unwrap(), id);
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        assert!("not-a-uuid".parse::<OrderId>().is_err());
    }
}
