//! event-ingest (skeleton; filled by its issue).
