//! Decimal text → fixed-point mantissa: the SWAR `parse_fixed`, the scalar
//! `parse_fixed_reference` it replaces, and `rust_decimal::Decimal::from_str_exact` as a peer.
//!
//! Run: `cargo bench -p aaiti-model --bench decimal`. Each iteration parses a batch of 60
//! numbers (60 copies of one text, or the 60-text mix), so the per-iteration overhead is
//! amortised: criterion's `time` is per batch and its `thrpt` is numbers per second
//! (ns per number = 1000 / Melem/s).

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
#![allow(clippy::unwrap_used, reason = "benchmark inputs are known-good")]

use std::hint::black_box;

use aaiti_model::fixed::{Scale, parse_fixed, parse_fixed_reference};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;

/// Real-looking prices and quantities as spot exchanges send them (scale 8).
const MIX: &[&str] = &[
    "61737.63000000",
    "0.00123000",
    "61736.01000000",
    "3.45100000",
    "0.00010000",
    "61737.64000000",
    "0.04151000",
    "61735.99000000",
    "0.25000000",
    "61738.10000000",
    "1.00000000",
    "0.00054000",
    "61734.50000000",
    "12.50000000",
    "0.00200000",
    "3021.45000000",
    "0.51230000",
    "3021.44000000",
    "4.10000000",
    "3021.50000000",
    "0.00008000",
    "148.72000000",
    "27.31400000",
    "148.71000000",
    "0.10000000",
    "0.61820000",
    "15230.00000000",
    "0.61810000",
    "9000.00000000",
    "0.61830000",
    "0.00001573",
    "120000000.00000000",
    "0.00001574",
    "35000000.00000000",
    "0.00001572",
    "61737.63",
    "0.00123",
    "3021.4",
    "0.5",
    "12",
    "107.35000000",
    "0.87600000",
    "107.34000000",
    "2.00000000",
    "107.36000000",
    "0.03154000",
    "1.99700000",
    "0.03153000",
    "50.00000000",
    "0.03155000",
    "6.84210000",
    "730.00000000",
    "6.84200000",
    "0.01000000",
    "6.84220000",
    "61740.00000000",
    "0.00000100",
    "61720.55000000",
    "0.33300000",
    "61755.12000000",
];

fn bench_inputs(c: &mut Criterion, name: &str, inputs: &[&str]) {
    let scale = Scale::new(8).unwrap();
    let bytes: Vec<&[u8]> = inputs.iter().map(|s| s.as_bytes()).collect();
    for b in &bytes {
        assert_eq!(parse_fixed(b, scale), parse_fixed_reference(b, scale));
        assert!(parse_fixed(b, scale).is_ok(), "{b:?}");
    }
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("fast", |bench| {
        bench.iter(|| {
            let mut sum = 0i64;
            for b in black_box(&bytes) {
                // The scale is black-boxed too: in the engine it is loaded from the instrument.
                sum = sum.wrapping_add(parse_fixed(black_box(b), black_box(scale)).unwrap_or(0));
            }
            sum
        });
    });
    group.bench_function("reference", |bench| {
        bench.iter(|| {
            let mut sum = 0i64;
            for b in black_box(&bytes) {
                sum = sum.wrapping_add(
                    parse_fixed_reference(black_box(b), black_box(scale)).unwrap_or(0),
                );
            }
            sum
        });
    });
    group.bench_function("rust_decimal", |bench| {
        bench.iter(|| {
            let mut acc = 0u32;
            for s in black_box(inputs) {
                acc = acc
                    .wrapping_add(Decimal::from_str_exact(black_box(s)).map_or(0, |d| d.scale()));
            }
            acc
        });
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    bench_inputs(c, "parse/61737.63000000", &["61737.63000000"; 60]);
    bench_inputs(c, "parse/0.00241000", &["0.00241000"; 60]);
    bench_inputs(c, "parse/mix60", MIX);
}

criterion_group!(benches, parse);
criterion_main!(benches);
