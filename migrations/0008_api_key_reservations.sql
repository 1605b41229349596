-- API keys are found by their hash when a program presents one (`X-Api-Key`), so the
-- hash is claimed like a username, in the transaction of the ApiKeyIssued event. A
-- revoked key keeps its claim; the User aggregate says whether it still works.
ALTER TABLE user_reservations DROP CONSTRAINT user_reservations_kind_check;
ALTER TABLE user_reservations
    ADD CONSTRAINT user_reservations_kind_check CHECK (kind IN ('username', 'email', 'api_key'));
