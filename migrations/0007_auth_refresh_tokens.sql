-- Refresh tokens (api::auth::refresh): stored as the SHA-256 of the token, never the
-- token. A login starts a family; each refresh uses one token and adds the next. A
-- token used twice revokes its family, and so does logout. Access tokens carry the
-- family as their session (`sid`): a revoked family's access tokens are refused too.
CREATE TABLE auth_refresh_tokens
(
    token_hash bytea PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);

CREATE INDEX auth_refresh_tokens_family_idx ON auth_refresh_tokens (family_id);
CREATE INDEX auth_refresh_tokens_user_idx ON auth_refresh_tokens (user_id);
