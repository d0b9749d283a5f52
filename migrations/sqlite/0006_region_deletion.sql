-- Deleted regions stay as rows marked `deleted_at` (Unix ms): the audit rows, cases and alarms scoped to a
-- region keep belonging to it, so the admins above it still see them (scopes are computed over the whole
-- tree, deleted regions included). Lists and lookups skip deleted regions; creating the code again revives it.
ALTER TABLE regions ADD COLUMN deleted_at INTEGER;
