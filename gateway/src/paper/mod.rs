//! The embedded paper venue (skeleton).
