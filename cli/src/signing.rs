//! Who runs a write command (`dlq requeue|discard`, `reconcile --repair`): an operator of the
//! deployment, proven by their token, exactly as on the services' admin routes. The deployment's
//! operators are its `ADMIN_TOKENS` (`name=token,...`, the services' own setting); the operator's
//! token is `JETSAGA_ADMIN_TOKEN` (or `--admin-token`). The operator's name is what the action
//! records. Without operators, a write command runs only with `--insecure-admin`, and then records
//! `--by` (default `$USER`) unchecked.

use clap::Args;
use jetsaga_contracts::Actor;
use jetsaga_runtime::operators::{Operators, OperatorsError};

#[derive(Debug, Clone, Default, Args)]
pub struct Signing {
    /// Your operator token: one of the deployment's ADMIN_TOKENS.
    #[arg(
        long = "admin-token",
        env = "JETSAGA_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The deployment's operators, as its services have them (`name=token,...`).
    #[arg(long = "admin-tokens", env = "ADMIN_TOKENS", hide_env_values = true)]
    pub operators: Option<String>,
    /// No operators on this deployment (a development machine): run the write command unsigned,
    /// recording --by.
    #[arg(long, env = "INSECURE_ADMIN")]
    pub insecure_admin: bool,
    /// With --insecure-admin only: the name recorded for the action (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
}

/// Why a write command was refused before it did anything.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(
        "this command changes the system and needs an operator: set JETSAGA_ADMIN_TOKEN (or \
         --admin-token) to your token and ADMIN_TOKENS (or --admin-tokens) to the deployment's \
         operators; on a development machine without operators, pass --insecure-admin"
    )]
    NoOperators,
    #[error(
        "this command needs your operator token: set JETSAGA_ADMIN_TOKEN or pass --admin-token"
    )]
    NoToken,
    #[error("the operator token is not one of the deployment's ADMIN_TOKENS")]
    UnknownToken,
    #[error("--by names the operator only with --insecure-admin; signed, the token names you")]
    ByWithoutInsecure,
    #[error("{0}")]
    BadOperators(#[source] OperatorsError),
    #[error("--by {name:?} is not an operator name: {reason}")]
    BadName { name: String, reason: String },
}

impl Signing {
    /// The operator this command acts as.
    pub fn operator(&self) -> Result<Actor, SigningError> {
        let configured = self.operators.as_deref().filter(|o| !o.trim().is_empty());
        match configured {
            Some(text) => {
                if self.by.is_some() {
                    return Err(SigningError::ByWithoutInsecure);
                }
                let operators: Operators = text.parse().map_err(SigningError::BadOperators)?;
                let token = self
                    .token
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .ok_or(SigningError::NoToken)?;
                operators
                    .who(token)
                    .cloned()
                    .ok_or(SigningError::UnknownToken)
            }
            None if self.insecure_admin => {
                let name = self
                    .by
                    .clone()
                    .or_else(|| std::env::var("USER").ok())
                    .filter(|s| !s.trim().is_empty());
                match name {
                    Some(name) => Actor::parse(&name).map_err(|e| SigningError::BadName {
                        name,
                        reason: e.to_string(),
                    }),
                    None => Ok(Actor::anonymous()),
                }
            }
            None => Err(SigningError::NoOperators),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-token-0123456789";

    fn signing(operators: Option<&str>, token: Option<&str>) -> Signing {
        Signing {
            token: token.map(str::to_owned),
            operators: operators.map(str::to_owned),
            ..Signing::default()
        }
    }

    #[test]
    fn the_token_names_the_operator() {
        let ops = format!("alice={ALICE},bob=bob-token-0123456789ab");
        let s = signing(Some(&ops), Some(ALICE));
        assert_eq!(s.operator().unwrap().as_str(), "alice");
    }

    #[test]
    fn a_missing_or_unknown_token_or_no_operators_is_refused() {
        let ops = format!("alice={ALICE}");
        assert!(matches!(
            signing(Some(&ops), None).operator(),
            Err(SigningError::NoToken)
        ));
        assert!(matches!(
            signing(Some(&ops), Some("nobody-token-0123456789")).operator(),
            Err(SigningError::UnknownToken)
        ));
        assert!(matches!(
            signing(None, Some(ALICE)).operator(),
            Err(SigningError::NoOperators)
        ));
        assert!(matches!(
            signing(Some("alice=short"), Some("short")).operator(),
            Err(SigningError::BadOperators(_))
        ));
    }

    #[test]
    fn by_names_the_actor_only_when_unsigned_by_choice() {
        let mut s = signing(None, None);
        s.insecure_admin = true;
        s.by = Some("carol".into());
        assert_eq!(s.operator().unwrap().as_str(), "carol");
        let ops = format!("alice={ALICE}");
        let mut signed = signing(Some(&ops), Some(ALICE));
        signed.by = Some("mallory".into());
        assert!(matches!(
            signed.operator(),
            Err(SigningError::ByWithoutInsecure)
        ));
    }
}
