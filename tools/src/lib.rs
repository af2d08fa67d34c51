//! AAITI tools: journal inspection, FIX load generator and model training helpers; each tool
//! arrives with the issue that builds its subject.
#![forbid(unsafe_code)]
