//! Access tokens: JWTs signed with HS256 and the server's secret, valid for 15 minutes
//! by default. Only HS256 is accepted (a token saying `alg: none`, or any other
//! algorithm, is refused before its signature is looked at), the issuer must be ours,
//! and `exp`, `iat`, `iss`, `sub`, `sid` and `jti` must be present. `jti` is a fresh
//! UUID per token, so two tokens issued in the same second for one session differ.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who issues and who accepts our tokens.
pub const ISSUER: &str = "coinfold";

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The session: the refresh-token family it was issued with (logout revokes it).
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    /// This token's own id.
    pub jti: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
}

/// Issues and checks access tokens.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl AccessTokens {
    /// `secret` must be at least [`MIN_SECRET_BYTES`] long (the settings check it).
    pub fn new(secret: &SecretString, ttl: Duration) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl,
        }
    }

    /// A token for `user` in `session`, and when it expires.
    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime), TokenError> {
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user,
            sid: session,
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            iss: ISSUER.to_owned(),
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)?;
        Ok((token, expires_at))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> AccessTokens {
        AccessTokens::new(&SecretString::from(secret), Duration::from_secs(900))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    #[test]
    fn a_token_we_issued_is_accepted_with_its_claims() {
        let t = tokens(SECRET);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let (token, expires_at) = t.issue(user, session, now).unwrap();
        assert_eq!(expires_at, now + Duration::from_secs(900));
        let claims = t.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));
    }

    #[test]
    fn tokens_issued_in_the_same_second_for_one_session_differ() {
        let t = tokens(SECRET);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let (first, _) = t.issue(user, session, now).unwrap();
        let (second, _) = t.issue(user, session, now).unwrap();
        assert_ne!(first, second);
        assert_ne!(
            t.verify(&first).unwrap().jti,
            t.verify(&second).unwrap().jti
        );
    }

    #[test]
    fn another_key_an_expired_token_and_alg_none_are_refused() {
        let now = OffsetDateTime::now_utc();
        let (token, _) = tokens("another-secret-of-thirty-two-bytes!!")
            .issue(Uuid::now_v7(), Uuid::now_v7(), now)
            .unwrap();
        assert_eq!(tokens(SECRET).verify(&token), Err(TokenError::Invalid));

        let (old, _) = tokens(SECRET)
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                now - time::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(tokens(SECRET).verify(&old), Err(TokenError::Expired));

        // The payload of a valid token under an `alg: none` header, unsigned.
        let (good, _) = tokens(SECRET)
            .issue(Uuid::now_v7(), Uuid::now_v7(), now)
            .unwrap();
        let payload = good.split('.').nth(1).unwrap();
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        for forged in [
            format!("{none_header}.{payload}."),
            format!("{none_header}.{payload}"),
        ] {
            assert_eq!(tokens(SECRET).verify(&forged), Err(TokenError::Invalid));
        }
        assert_eq!(
            tokens(SECRET).verify("not a token"),
            Err(TokenError::Invalid)
        );
    }
}
