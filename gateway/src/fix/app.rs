//! Application messages: FIX requests from the desk to the engine's order commands, and the
//! engine's order events, books and positions to FIX responses.
