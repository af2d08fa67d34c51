//! The FIX 4.4 dictionary the gateway validates inbound messages against (required fields,
//! data formats, value ranges, repeating groups).
