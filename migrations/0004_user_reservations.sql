-- Usernames and e-mail addresses are unique across users. The User aggregate sees only
-- itself, so the claim is written here, in the same transaction as the event that
-- makes it (UserRegistered, EmailChanged): two registrations of one name cannot both
-- commit. Values are stored as the value types normalize them (lower case). A
-- deactivated user keeps its claims, so nobody can take over its name.
CREATE TABLE user_reservations
(
    kind        text        NOT NULL CHECK (kind IN ('username', 'email')),
    value       text        NOT NULL,
    user_id     text        NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

CREATE INDEX user_reservations_user_idx ON user_reservations (user_id);
