-- `cameras.record` becomes an INTEGER flag (0 or 1): one query layer serves SQLite and PostgreSQL through
-- sqlx::Any, which reads integers from both engines but refuses SQLite columns declared BOOLEAN.
ALTER TABLE cameras ADD COLUMN record_flag INTEGER NOT NULL DEFAULT 1 CHECK (record_flag IN (0, 1));
UPDATE cameras SET record_flag = CASE WHEN record THEN 1 ELSE 0 END;
ALTER TABLE cameras DROP COLUMN record;
ALTER TABLE cameras RENAME COLUMN record_flag TO record;
