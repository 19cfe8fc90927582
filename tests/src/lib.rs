//! Integration tests (skeleton).
