-- W3C trace context of the span that enqueued a job, so its consumer continues the same trace.
-- Beside the payload, not in it: dedup keys and payload models stay as they are.
ALTER TABLE jobs ADD COLUMN traceparent text, ADD COLUMN tracestate text;
