//! The [`EventSet`] trait: how a service's event enum maps to `ce-type` names, subjects and JSON.

use crate::Producer;

/// Why a payload could not be turned into a typed event. Both are permanent: the same bytes will
/// never decode, so the message goes to the dead letters instead of being retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown ce-type {ce_type:?} for producer {producer}")]
    UnknownType { ce_type: String, producer: Producer },
    #[error("payload of {ce_type} does not decode: {source}")]
    Malformed {
        ce_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The events one service produces: one enum, past-tense variants, one payload struct each.
///
/// Implemented by the `event_set!` macro so the `ce-type`, the subject token and the decoder of a
/// variant are written once, side by side.
pub trait EventSet: Sized + Send + Sync + Clone + std::fmt::Debug + 'static {
    /// The service that produces these events, and so the stream they live in.
    const PRODUCER: Producer;

    /// `jetsaga.<domain>.<event>.v<N>`: the CloudEvents type, schema version included.
    fn ce_type(&self) -> &'static str;

    /// The key this event is about: the order id for saga events, the SKU, customer or voucher code
    /// for admin events. It is the last subject token, the `ce-subject` and the ordering key.
    fn key(&self) -> String;

    /// `<domain>.<event>.<key>`.
    fn subject(&self) -> String;

    /// Every `ce-type` this set can decode.
    fn ce_types() -> &'static [&'static str];

    /// Every event of this set as the contract documents describe it, its payload schema
    /// registered in `generator` (`docs/events/asyncapi.json`).
    fn documented(generator: &mut schemars::SchemaGenerator) -> Vec<MessageDoc>;

    /// The subject filter of one variant, named as in the enum: `"VoucherReserved"` gives
    /// `vouchers.reserved.*`. `None` for a name that is not a variant.
    fn subject_filter(variant: &str) -> Option<&'static str>;

    /// The JSON body.
    fn to_payload(&self) -> Vec<u8>;

    /// Decodes a body by its `ce-type`.
    fn from_payload(ce_type: &str, payload: &[u8]) -> Result<Self, DecodeError>;
}

/// One event type as the contract documents describe it.
#[derive(Debug, Clone)]
pub struct MessageDoc {
    /// The variant, e.g. `OrderCreated`.
    pub name: &'static str,
    /// e.g. `jetsaga.orders.created.v1`.
    pub ce_type: &'static str,
    /// The subject with its key as a parameter: `orders.created.{key}`.
    pub address: &'static str,
    /// The payload's JSON Schema (a reference into the generator's definitions).
    pub payload: schemars::Schema,
}

/// A payload that knows the key its event is about.
pub trait Keyed {
    fn key(&self) -> String;
}

/// Declares an event enum and implements [`EventSet`] for it.
///
/// The producer is declared here, once: its service name, its stream and the subject domain
/// every `ce-type` and subject is derived from. A variant is emitted as `.v1`; `also "v2" =>
/// Payload2` makes the decoder accept another version of the same event beside it (converted with
/// `From`), for the time consumers and producers move from one to the other.
///
/// ```text
/// event_set! {
///     /// doc
///     pub enum OrderEvent {
///         service: "order", stream: "ORDERS", domain: "orders";
///         OrderCreated(OrderCreated) = "created",
///     }
/// }
/// ```
#[macro_export]
macro_rules! event_set {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            service: $service:literal, stream: $stream:literal, domain: $domain:literal;
            $(
                $(#[$vdoc:meta])* $variant:ident($payload:ty) = $token:literal
                $( also $version:literal => $older:ty )*
            ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vdoc])* $variant($payload), )+
        }

        impl $crate::EventSet for $name {
            const PRODUCER: $crate::Producer =
                $crate::Producer::declare($service, $stream, $domain, concat!("jetsaga/", $service));

            fn ce_type(&self) -> &'static str {
                match self {
                    $( $name::$variant(_) => concat!("jetsaga.", $domain, ".", $token, ".v1"), )+
                }
            }

            fn key(&self) -> String {
                match self {
                    $( $name::$variant(p) => $crate::event_set::Keyed::key(p), )+
                }
            }

            fn subject(&self) -> String {
                let token = match self {
                    $( $name::$variant(_) => $token, )+
                };
                format!("{}.{}.{}", $domain, token, self.key())
            }

            fn ce_types() -> &'static [&'static str] {
                &[ $(
                    concat!("jetsaga.", $domain, ".", $token, ".v1"),
                    $( concat!("jetsaga.", $domain, ".", $token, ".", $version), )*
                )+ ]
            }

            fn documented(
                generator: &mut $crate::__schemars::SchemaGenerator,
            ) -> Vec<$crate::event_set::MessageDoc> {
                vec![
                    $(
                        $crate::event_set::MessageDoc {
                            name: stringify!($variant),
                            ce_type: concat!("jetsaga.", $domain, ".", $token, ".v1"),
                            address: concat!($domain, ".", $token, ".{key}"),
                            payload: generator.subschema_for::<$payload>(),
                        },
                        $(
                            $crate::event_set::MessageDoc {
                                name: stringify!($older),
                                ce_type: concat!("jetsaga.", $domain, ".", $token, ".", $version),
                                address: concat!($domain, ".", $token, ".{key}"),
                                payload: generator.subschema_for::<$older>(),
                            },
                        )*
                    )+
                ]
            }

            fn subject_filter(variant: &str) -> Option<&'static str> {
                $(
                    if variant == stringify!($variant) {
                        return Some(concat!($domain, ".", $token, ".*"));
                    }
                )+
                None
            }

            fn to_payload(&self) -> Vec<u8> {
                // Serializing plain data structs with string keys cannot fail.
                match self {
                    $( $name::$variant(p) => serde_json::to_vec(p).expect("event payloads always serialize"), )+
                }
            }

            fn from_payload(ce_type: &str, payload: &[u8]) -> Result<Self, $crate::DecodeError> {
                $(
                    if ce_type == concat!("jetsaga.", $domain, ".", $token, ".v1") {
                        return serde_json::from_slice::<$payload>(payload)
                            .map($name::$variant)
                            .map_err(|source| $crate::DecodeError::Malformed {
                                ce_type: ce_type.to_owned(),
                                source,
                            });
                    }
                    $(
                        // Another version of the same event, accepted side by side.
                        if ce_type == concat!("jetsaga.", $domain, ".", $token, ".", $version) {
                            return serde_json::from_slice::<$older>(payload)
                                .map(|p| $name::$variant(p.into()))
                                .map_err(|source| $crate::DecodeError::Malformed {
                                    ce_type: ce_type.to_owned(),
                                    source,
                                });
                        }
                    )*
                )+
                Err($crate::DecodeError::UnknownType {
                    ce_type: ce_type.to_owned(),
                    producer: <$name as $crate::EventSet>::PRODUCER,
                })
            }
        }

        $(
            impl $payload {
                /// The subjects of this event, for a consumer's filter: `<domain>.<event>.*`.
                pub const SUBJECT_FILTER: &'static str = concat!($domain, ".", $token, ".*");

                /// The subject of this event about `key`: `<domain>.<event>.<key>`.
                pub fn subject_of(key: impl std::fmt::Display) -> String {
                    format!(concat!($domain, ".", $token, ".{}"), key)
                }
            }

            impl From<$payload> for $name {
                fn from(p: $payload) -> Self {
                    $name::$variant(p)
                }
            }
        )+
    };
}
