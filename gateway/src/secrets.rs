//! Exchange API secrets encrypted at rest (AES-256-GCM).
