//! sf-sim (skeleton; filled by its issue).
