//! Authentication: HS256-signed JWTs naming the documents a client may
//! open and whether it may write them.
//!
//! A token's claims ([`Claims`]): `sub` (who, for logs), `exp` (expiry, Unix
//! seconds), `nbf` (optional: not valid before, Unix seconds), `docs`
//! (document ids; `"*"` is every document, `"team-*"` every id starting
//! with `team-`) and `write` (false = read-only). The client sends it in
//! `Hello.token`; the relay checks it at `Hello`: the signature, `exp`
//! (`TokenExpired` 7 once passed, no leeway; `Unauthorized` 6 if it lies
//! further ahead than the relay's maximum token lifetime), `nbf`
//! (`Unauthorized` while it is more than the allowed clock skew ahead).
//! Then the document at `Subscribe` (`Forbidden` 100), `write` at `Update`
//! (`ReadOnly` 251); the connection closes with `TokenExpired` at `exp`,
//! whether or not the client sends anything.
//!
//! ```
//! use weft_relay::auth::{mint_token, Authenticator, Claims};
//! use weft_relay::AuthConfig;
//!
//! let secret = b"a secret of at least thirty-two bytes!".to_vec();
//! let token = mint_token(&secret, &Claims::new("ada", vec!["notes-*".into()], false, 3600)).unwrap();
//! let auth = Authenticator::new(&AuthConfig::Hs256 { secret });
//! let grant = auth.verify(Some(&token)).unwrap();
//! assert!(grant.may_read("notes-1") && !grant.may_read("other"));
//! assert!(!grant.write);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use weft_protocol::ErrorCode;

use crate::config::AuthConfig;

/// The claims of a weft access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to (logged, not checked).
    #[serde(default)]
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Document ids or `prefix*` patterns this token opens.
    pub docs: Vec<String>,
    /// Whether updates may be written (otherwise read-only).
    #[serde(default)]
    pub write: bool,
}

impl Claims {
    /// Claims for `sub` on `docs`, expiring `ttl_secs` from now.
    pub fn new(sub: &str, docs: Vec<String>, write: bool, ttl_secs: u64) -> Claims {
        Claims {
            sub: sub.to_owned(),
            exp: now_secs().saturating_add(ttl_secs),
            nbf: None,
            docs,
            write,
        }
    }
}

/// What a verified connection may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who (from the token; `"anonymous"` without auth).
    pub subject: String,
    /// Document patterns (see the module docs).
    pub docs: Vec<String>,
    /// Write permission.
    pub write: bool,
    /// Expiry in Unix seconds (`None`: never).
    pub expires: Option<u64>,
}

impl Grant {
    /// Full access, no expiry (insecure mode).
    pub fn everything() -> Grant {
        Grant {
            subject: "anonymous".into(),
            docs: vec!["*".into()],
            write: true,
            expires: None,
        }
    }

    /// Whether the grant covers document `doc`.
    pub fn may_read(&self, doc: &str) -> bool {
        self.docs.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => doc.starts_with(prefix),
            None => p == doc,
        })
    }

    /// Whether the grant may write document `doc`.
    pub fn may_write(&self, doc: &str) -> bool {
        self.write && self.may_read(doc)
    }

    /// Whether it has expired by now.
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|exp| now_secs() >= exp)
    }

    /// How long until it expires (`None`: never; zero: already).
    pub fn expires_in(&self) -> Option<Duration> {
        let exp = UNIX_EPOCH.checked_add(Duration::from_secs(self.expires?))?;
        Some(
            exp.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Why a token was refused, with its protocol error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    /// `Unauthorized` or `TokenExpired`.
    pub code: ErrorCode,
    /// Human-readable reason (sent to the client, logged).
    pub message: String,
}

/// Verifies tokens according to an [`AuthConfig`].
#[derive(Clone)]
pub struct Authenticator {
    key: Option<DecodingKey>,
    validation: Validation,
    clock_skew: u64,
    max_lifetime: u64,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.key.is_some())
            .field("clock_skew", &self.clock_skew)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator for `config`, allowing 30 s of clock skew on `nbf`
    /// and tokens valid for at most 30 days ([`Authenticator::with_policy`]
    /// changes both).
    pub fn new(config: &AuthConfig) -> Authenticator {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` and `nbf` are checked in `verify`, for their own error
        // codes and leeways; the signature and `exp`'s presence here.
        validation.leeway = 0;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp"]);
        let key = match config {
            AuthConfig::Insecure => None,
            AuthConfig::Hs256 { secret } => Some(DecodingKey::from_secret(secret)),
        };
        Authenticator {
            key,
            validation,
            clock_skew: 30,
            max_lifetime: 30 * 24 * 3600,
        }
    }

    /// Sets the clock skew allowed on `nbf` and the longest a token may
    /// still be valid (`exp` further ahead is refused), both rounded down
    /// to whole seconds.
    pub fn with_policy(mut self, clock_skew: Duration, max_lifetime: Duration) -> Authenticator {
        self.clock_skew = clock_skew.as_secs();
        self.max_lifetime = max_lifetime.as_secs();
        self
    }

    /// Whether tokens are checked at all.
    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }

    /// Checks `token` and returns what it grants.
    pub fn verify(&self, token: Option<&str>) -> Result<Grant, AuthError> {
        let Some(key) = &self.key else {
            return Ok(Grant::everything());
        };
        let Some(token) = token else {
            return Err(AuthError {
                code: ErrorCode::Unauthorized,
                message: "a token is required".into(),
            });
        };
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => {
                let claims = data.claims;
                let now = now_secs();
                if claims.exp <= now {
                    return Err(expired());
                }
                if claims.exp - now > self.max_lifetime {
                    return Err(unauthorized(format!(
                        "token valid for longer than the relay allows ({} s)",
                        self.max_lifetime
                    )));
                }
                if claims
                    .nbf
                    .is_some_and(|nbf| nbf > now.saturating_add(self.clock_skew))
                {
                    return Err(unauthorized("token not valid yet (nbf)".into()));
                }
                Ok(Grant {
                    subject: claims.sub,
                    docs: claims.docs,
                    write: claims.write,
                    expires: Some(claims.exp),
                })
            }
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(expired()),
            Err(e) => Err(AuthError {
                code: ErrorCode::Unauthorized,
                message: format!("invalid token: {e}"),
            }),
        }
    }
}

fn unauthorized(message: String) -> AuthError {
    AuthError {
        code: ErrorCode::Unauthorized,
        message,
    }
}

fn expired() -> AuthError {
    AuthError {
        code: ErrorCode::TokenExpired,
        message: "token expired".into(),
    }
}

/// Signs `claims` with `secret` (HS256): for issuing tokens from a trusted
/// service, tests and the `weft-relay token` command.
pub fn mint_token(secret: &[u8], claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
