-- When a mark started waiting (for /status's oldest-pending age; updated_at moves on every attempt).
ALTER TABLE outbox ADD COLUMN pending_since INTEGER;
UPDATE outbox SET pending_since = updated_at WHERE status IN ('pending', 'retrying');
