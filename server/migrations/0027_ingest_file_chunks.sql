-- Daily files stored chunk by chunk (issue 10, item 5): processing linear in the file's size.
-- Before, a file was one bytea and its verdicts one growing bytea: every chunk re-read the whole
-- file and rewrote the whole results column (quadratic). Now the upload splits the file into
-- chunks of `file_chunk_records` records (behaviours/files.py), each chunk a row holding only
-- its own lines; the worker reads one chunk per transaction and writes that chunk's verdicts
-- beside it; the file's row keeps the durable cursor (`next_chunk`) and the counters.

CREATE TABLE ingest_file_chunks (
    file_id     uuid      NOT NULL REFERENCES ingest_files (id) ON DELETE CASCADE,
    seq         integer   NOT NULL CHECK (seq >= 0),
    -- The file's number (NDJSON: line, CSV: record, the header being 1) of the chunk's first
    -- line; for a file stored before this migration and not yet finished, where to resume.
    first_line  integer   NOT NULL CHECK (first_line >= 1),
    -- Verdicts the chunk yields (its non-blank records). NULL: a whole file stored before this
    -- migration, split by the worker when it resumes it (behaviours.files, "legacy").
    records     integer   CHECK (records >= 0),
    -- Numbers of the chunk's records with a physical line longer than files.MAX_LINE_BYTES: that
    -- line's bytes are not kept (a one-character stand-in is), the record is answered
    -- record_invalid without being decoded.
    oversized   integer[] NOT NULL DEFAULT '{}',
    content     bytea     NOT NULL,       -- the chunk's lines as uploaded (CSV: no header)
    results     bytea,                    -- its verdicts as NDJSON, once processed
    PRIMARY KEY (file_id, seq)
);

ALTER TABLE ingest_files
    ADD COLUMN size_bytes    bigint  NOT NULL DEFAULT 0,
    ADD COLUMN header        bytea   NOT NULL DEFAULT '',  -- a CSV file's header record
    ADD COLUMN chunks        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_chunk    integer NOT NULL DEFAULT 0,   -- the resume point: first chunk not done
    ADD COLUMN records_total integer;                      -- verdicts the whole file yields

-- Existing files: each becomes one chunk (its content and the verdicts it has). Finished ones
-- are complete as they are; a file still queued or half-done is split by the worker when it
-- resumes it, from the line after the old resume point.
UPDATE ingest_files SET
    size_bytes = length(content),
    chunks = 1,
    next_chunk = CASE WHEN status IN ('done', 'failed') THEN 1 ELSE 0 END,
    records_total = CASE WHEN status IN ('done', 'failed') THEN records END;

INSERT INTO ingest_file_chunks (file_id, seq, first_line, records, content, results)
SELECT id, 0, CASE WHEN status IN ('done', 'failed') THEN 1 ELSE next_line + 1 END,
       CASE WHEN status IN ('done', 'failed') THEN records END,
       content,
       CASE WHEN status IN ('done', 'failed') OR results <> '' THEN results END
FROM ingest_files;

ALTER TABLE ingest_files DROP COLUMN content, DROP COLUMN results, DROP COLUMN next_line;

-- The periodic sweep's scan (files.stalled_files).
CREATE INDEX ingest_files_pending ON ingest_files (created_at)
    WHERE status IN ('queued', 'processing');
