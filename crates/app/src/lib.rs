//! The callsync service (skeleton; filled by its issue).
