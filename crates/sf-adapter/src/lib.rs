//! sf-adapter (skeleton; filled by its issue).
