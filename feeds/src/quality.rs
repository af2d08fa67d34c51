//! Data-quality detectors: stale feeds, timestamps going backwards, outlier prices and
//! crossed best bid/offer. Pure state machines; the handlers turn their findings into
//! `FeedEvent`s.

/// Which stream of an instrument a timestamp came from: venues interleave several streams
/// (book, trades, ticker) whose event times are each monotonic but not with one another.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum TsClass {
    Book = 0,
    Trade = 1,
    Ticker = 2,
}

/// Per-instrument data-quality state.
#[derive(Clone, Debug, Default)]
pub(crate) struct InstrumentQuality {
    last_ts_event: [u64; 3],
    reference_price: i64,
    outliers_in_row: u8,
    /// Receive time of the instrument's last message (0: none yet).
    pub(crate) last_recv_ns: u64,
    /// A `Stale` event was emitted and no message arrived since.
    pub(crate) stale: bool,
}

impl InstrumentQuality {
    /// Records a venue event time; returns the previous (larger) one if time went backwards.
    pub(crate) fn check_ts(&mut self, class: TsClass, ts_event_ns: u64) -> Option<u64> {
        let last = &mut self.last_ts_event[class as usize];
        if ts_event_ns < *last {
            Some(*last)
        } else {
            *last = ts_event_ns;
            None
        }
    }

    /// Checks `price` against the reference: returns the reference if `price` is further
    /// than `band_bps` from it. The reference follows accepted prices and moves to an
    /// outlier level after `reanchor_after` outliers in a row.
    pub(crate) fn check_price(
        &mut self,
        price: i64,
        band_bps: u32,
        reanchor_after: u8,
    ) -> Option<i64> {
        if band_bps == 0 || price <= 0 {
            return None;
        }
        let reference = self.reference_price;
        if reference <= 0 {
            self.reference_price = price;
            return None;
        }
        let deviation = (i128::from(price) - i128::from(reference)).abs() * 10_000;
        if deviation > i128::from(reference) * i128::from(band_bps) {
            self.outliers_in_row = self.outliers_in_row.saturating_add(1);
            if self.outliers_in_row >= reanchor_after.max(1) {
                self.reference_price = price;
                self.outliers_in_row = 0;
            }
            Some(reference)
        } else {
            self.reference_price = price;
            self.outliers_in_row = 0;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_going_backwards_are_reported_per_class() {
        let mut q = InstrumentQuality::default();
        assert_eq!(q.check_ts(TsClass::Book, 10), None);
        assert_eq!(q.check_ts(TsClass::Trade, 5), None);
        assert_eq!(q.check_ts(TsClass::Book, 9), Some(10));
        assert_eq!(q.check_ts(TsClass::Book, 10), None);
        assert_eq!(q.check_ts(TsClass::Book, 11), None);
    }

    #[test]
    fn outliers_against_a_moving_reference() {
        let mut q = InstrumentQuality::default();
        assert_eq!(q.check_price(10_000, 100, 3), None);
        assert_eq!(q.check_price(10_050, 100, 3), None);
        assert_eq!(q.check_price(20_000, 100, 3), Some(10_050));
        assert_eq!(q.check_price(10_060, 100, 3), None);
        // A real move: three outliers in a row re-anchor.
        assert_eq!(q.check_price(5_000, 100, 3), Some(10_060));
        assert_eq!(q.check_price(5_001, 100, 3), Some(10_060));
        assert_eq!(q.check_price(5_002, 100, 3), Some(10_060));
        assert_eq!(q.check_price(5_003, 100, 3), None);
        assert_eq!(q.check_price(1, 0, 3), None);
    }
}
