//! The per-connection symbol table: venue symbol bytes to instrument, without hashing.

use aaiti_model::{InstrumentId, InstrumentRegistry, Scale, VenueId};

/// One instrument of the handler's venue.
#[derive(Clone, Debug)]
pub(crate) struct SymbolEntry {
    pub(crate) symbol: Box<[u8]>,
    pub(crate) id: InstrumentId,
    pub(crate) price_scale: Scale,
    pub(crate) qty_scale: Scale,
}

/// The instruments of one venue, in registry order. Handlers keep per-instrument state in
/// arrays indexed by the position in this table (the "local index").
///
/// Lookups compare the length first and then the bytes, over a few entries: cheaper than
/// hashing a string for the handful of instruments a connection carries.
#[derive(Clone, Debug)]
pub(crate) struct SymbolTable {
    entries: Vec<SymbolEntry>,
}

impl SymbolTable {
    pub(crate) fn new(registry: &InstrumentRegistry, venue: VenueId) -> Self {
        let entries = registry
            .instruments()
            .iter()
            .filter(|i| i.venue == venue)
            .map(|i| SymbolEntry {
                symbol: i.symbol.as_bytes().into(),
                id: i.id,
                price_scale: i.price_scale,
                qty_scale: i.qty_scale,
            })
            .collect();
        Self { entries }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub(crate) fn entry(&self, local: usize) -> &SymbolEntry {
        &self.entries[local]
    }

    #[inline]
    pub(crate) fn find(&self, symbol: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| *e.symbol == *symbol)
    }

    /// Case-insensitive (ASCII) lookup: Binance stream names carry the symbol in lowercase.
    pub(crate) fn find_ignore_case(&self, symbol: &[u8]) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.symbol.eq_ignore_ascii_case(symbol))
    }

    pub(crate) fn find_id(&self, id: InstrumentId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = InstrumentId> + '_ {
        self.entries.iter().map(|e| e.id)
    }
}
