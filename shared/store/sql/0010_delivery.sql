-- contentfn schema v10: delivery that survives crashes, one dead-letter store of record.

-- Who holds an in-progress claim: only the delivery that took it may complete or clear it, so a
-- delivery that outlived its claim (taken over after the function timeout) cannot overwrite the
-- result of the one that took over, nor delete its claim.
ALTER TABLE idempotency ADD COLUMN owner text;

-- A message brought in from a cloud dead-letter queue (SQS DLQ, Pub/Sub dead-letter subscription)
-- names its origin here; importing it again (a crash between the insert and the delete of the
-- message, two importers at once) adds nothing.
ALTER TABLE dead_jobs ADD COLUMN source_message_id text;
CREATE UNIQUE INDEX dead_jobs_source_message_idx ON dead_jobs (source_message_id)
    WHERE source_message_id IS NOT NULL;
