//! store-adapter (skeleton; filled by its issue).
