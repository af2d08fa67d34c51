//! Journal benchmarks with their baselines in the same run:
//!
//! * append throughput (records/s, GB/s) and per-append latency (p50/p99/p99.9) for 64 B and
//!   256 B records under `none`: the journal as configured by default (helper thread
//!   pre-faulting ahead), with pre-faulting off (first-touch faults), into a segment
//!   pre-faulted before timing (the ceiling for a mapped journal), a `BufWriter<File>` writing
//!   the same frames, and the same frames built into a pre-faulted `Vec` (memory ceiling);
//! * the same appends paced at fixed rates (the regime the engine runs in), with and
//!   without pre-faulting: per-append latency when the helper can keep ahead;
//! * group commit under `sync` and `interval`: records/s and commit latency;
//! * recovery: scan speed (GB/s) and time to resume over a 1 GiB journal.
//!
//! Run: `cargo bench -p aaiti-journal --bench append`. Environment: `AAITI_BENCH_DIR` (data
//! directory, default `/tmp`), `AAITI_BENCH_MB` (MiB of frames per throughput run, default
//! 512), `AAITI_BENCH_REPS` (repetitions of the throughput runs, default 3),
//! `AAITI_BENCH_SECTIONS` (any of `append64,append256,paced,commit,recovery`, default all).
//!
//! Timing: per-append latency reads the TSC once per append (the delta between consecutive
//! reads), so every sample includes one `rdtsc` (about 20 ns on this VM; its own distribution
//! is printed as "timer only"); batch timing (one read per 64 appends) gives the mean per
//! append without that overhead.
#![allow(unsafe_code, reason = "rdtsc for per-append timing")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark binary: fails loudly, prints its results"
)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aaiti_journal::{
    Durability, JournalConfig, JournalReader, JournalWriter, Maintenance, WriterStats,
};
use aaiti_model::{Envelope, InstrumentId, Price, Qty, RecordHeader, StreamId, Trade, UnixNanos};
use hdrhistogram::Histogram;

#[inline]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// TSC ticks per nanosecond, measured against `Instant`.
fn calibrate() -> f64 {
    let (t0, c0) = (Instant::now(), ticks());
    std::thread::sleep(Duration::from_millis(200));
    let (t1, c1) = (Instant::now(), ticks());
    (c1 - c0) as f64 / (t1 - t0).as_nanos() as f64
}

struct Env {
    dir: PathBuf,
    mib: u64,
    reps: usize,
    tick_ns: f64,
}

impl Env {
    fn fresh(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&path);
        path
    }
}

/// The record under test: a 64 B envelope (Trade) or a 256 B blob body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Size {
    B64,
    B256,
}

impl Size {
    fn body(self) -> usize {
        match self {
            Self::B64 => 64,
            Self::B256 => 256,
        }
    }
    fn frame(self) -> usize {
        (16 + self.body()).div_ceil(8) * 8
    }
}

/// Source records, cycled like ring slots.
struct Source {
    envelopes: Vec<Envelope>,
    blob: Vec<u8>,
}

impl Source {
    fn new() -> Self {
        let envelopes = (0..1024u64)
            .map(|i| {
                let header =
                    RecordHeader::new(StreamId(1), i + 1, UnixNanos(i * 10), UnixNanos(i * 10 + 3));
                let trade = Trade {
                    instrument: InstrumentId(7),
                    price: Price(6_173_763 + i as i64),
                    qty: Qty(10 + i as i64),
                    trade_id: i,
                    ..Trade::default()
                };
                Envelope::new(header, &trade)
            })
            .collect::<Vec<_>>();
        assert_eq!(envelopes[0].as_bytes().len(), 64);
        Self {
            envelopes,
            blob: (0..240).map(|i| i as u8 | 1).collect(),
        }
    }

    #[inline]
    fn append(&self, writer: &mut JournalWriter, size: Size, i: u64) -> u64 {
        match size {
            Size::B64 => writer
                .append_envelope(&self.envelopes[(i & 1023) as usize])
                .unwrap(),
            Size::B256 => writer.append_blob(3, UnixNanos(i), &self.blob).unwrap(),
        }
    }

    /// The same frame the journal writes, into `out`.
    #[inline]
    fn encode(&self, size: Size, seq: u64, out: &mut [u8]) {
        let mut blob_body = [0u8; 256];
        let body: &[u8] = match size {
            Size::B64 => self.envelopes[(seq & 1023) as usize].as_bytes(),
            Size::B256 => {
                blob_body[..8].copy_from_slice(&seq.to_le_bytes());
                blob_body[8..10].copy_from_slice(&3u16.to_le_bytes());
                blob_body[16..].copy_from_slice(&self.blob);
                &blob_body
            }
        };
        let ty: u32 = if size == Size::B64 { 1 } else { 2 };
        let word = (ty << 24) | body.len() as u32;
        out[8..16].copy_from_slice(&seq.to_le_bytes());
        out[16..16 + body.len()].copy_from_slice(body);
        out[16 + body.len()..].fill(0);
        let crc = crc32c::crc32c_append(word, &out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out[..4].copy_from_slice(&word.to_le_bytes());
    }
}

#[derive(Default, Clone, Copy)]
struct Lat {
    p50: f64,
    p99: f64,
    p999: f64,
    p9999: f64,
    max: f64,
}

impl Lat {
    fn from_ticks(deltas: &[u32], tick_ns: f64) -> Self {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000_000, 3).unwrap();
        for &d in deltas {
            hist.saturating_record(u64::from(d.max(1)));
        }
        let ns = |q: f64| hist.value_at_quantile(q) as f64 / tick_ns;
        Self {
            p50: ns(0.5),
            p99: ns(0.99),
            p999: ns(0.999),
            p9999: ns(0.9999),
            max: hist.max() as f64 / tick_ns,
        }
    }

    fn row(&self) -> String {
        format!(
            "p50 {:>6.1} ns  p99 {:>7.1} ns  p99.9 {:>8.1} ns  p99.99 {:>9.1} ns  max {:>10.1} ns",
            self.p50, self.p99, self.p999, self.p9999, self.max
        )
    }
}

fn default_config() -> JournalConfig {
    JournalConfig::default()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Untimed appends of `n` records: records/s.
fn journal_throughput(
    env: &Env,
    src: &Source,
    size: Size,
    config: &JournalConfig,
    n: u64,
    prefault_all: bool,
) -> (f64, String) {
    let dir = env.fresh("throughput");
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    if prefault_all {
        writer.maintain();
    }
    std::thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    for i in 0..n {
        src.append(&mut writer, size, i);
    }
    let elapsed = start.elapsed();
    let stats = writer.stats();
    drop(writer);
    std::fs::remove_dir_all(&dir).unwrap();
    let note = format!(
        "rolls {}, inline segment creations {}",
        stats.rolls, stats.inline_segment_creations
    );
    (n as f64 / elapsed.as_secs_f64(), note)
}

/// Appends timed one by one (one TSC read per append) and in batches of 64.
fn journal_latency(
    env: &Env,
    src: &Source,
    size: Size,
    config: &JournalConfig,
    n: u64,
    prefault_all: bool,
) -> (Lat, f64, f64) {
    let dir = env.fresh("latency");
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    if prefault_all {
        writer.maintain();
    }
    std::thread::sleep(Duration::from_millis(20));
    let mut deltas = vec![0u32; n as usize];
    let start = Instant::now();
    let mut last = ticks();
    for i in 0..n {
        src.append(&mut writer, size, i);
        let now = ticks();
        deltas[i as usize] = (now - last).min(u64::from(u32::MAX)) as u32;
        last = now;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(writer);
    std::fs::remove_dir_all(&dir).unwrap();

    // Batches of 64: mean per append, no timer in the loop body.
    let dir = env.fresh("latency-batch");
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    if prefault_all {
        writer.maintain();
    }
    std::thread::sleep(Duration::from_millis(20));
    let batches = n / 64;
    let mut batch = vec![0u32; batches as usize];
    for b in 0..batches {
        let t0 = ticks();
        for i in b * 64..(b + 1) * 64 {
            src.append(&mut writer, size, i);
        }
        batch[b as usize] = ((ticks() - t0) / 64).min(u64::from(u32::MAX)) as u32;
    }
    drop(writer);
    std::fs::remove_dir_all(&dir).unwrap();
    let batch_lat = Lat::from_ticks(&batch, env.tick_ns);
    (Lat::from_ticks(&deltas, env.tick_ns), rate, batch_lat.p999)
}

/// Open-loop paced appends at `rate` records/s: each append is timed alone (a TSC read
/// before and after), so the idle time between appends is not counted.
fn paced_latency(
    env: &Env,
    src: &Source,
    size: Size,
    config: &JournalConfig,
    rate: f64,
    n: u64,
) -> (Lat, f64, WriterStats) {
    let dir = env.fresh("paced");
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let step = env.tick_ns * 1e9 / rate;
    let mut deltas = vec![0u32; n as usize];
    let start = Instant::now();
    let t0 = ticks();
    for i in 0..n {
        let due = t0 + (i as f64 * step) as u64;
        while ticks() < due {
            std::hint::spin_loop();
        }
        let before = ticks();
        src.append(&mut writer, size, i);
        deltas[i as usize] = (ticks() - before).min(u64::from(u32::MAX)) as u32;
    }
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let stats = writer.stats();
    drop(writer);
    std::fs::remove_dir_all(&dir).unwrap();
    (Lat::from_ticks(&deltas, env.tick_ns), achieved, stats)
}

fn paced_section(env: &Env, src: &Source, size: Size, rates: &[f64]) {
    println!("\n(load average {})", load());
    println!(
        "\n### Paced appends, {} B records: latency of each append alone (two TSC reads; `timer pair` row is the floor)",
        size.body()
    );
    println!("| rate (M/s) | pre-faulting | achieved M/s | latency | rolls / longest roll |");
    println!("|---:|---|---:|---|---|");
    let pair = timer_pair(env);
    println!("| | timer pair | | {} | |", pair.row());
    for &rate in rates {
        let n = ((rate * 0.5) as u64).min(env.mib * (1 << 20) / size.frame() as u64);
        for prefault in [true, false] {
            let config = JournalConfig {
                prefault,
                ..default_config()
            };
            let (lat, achieved, stats) = paced_latency(env, src, size, &config, rate, n);
            let label = if prefault { "helper (default)" } else { "off" };
            println!(
                "| {:.0} | {label} | {:.1} | {} | {} / {:.1} ms |",
                rate / 1e6,
                achieved / 1e6,
                lat.row(),
                stats.rolls,
                stats.roll_ns_max as f64 / 1e6
            );
        }
    }
}

fn timer_pair(env: &Env) -> Lat {
    let mut deltas = vec![0u32; 1_000_000];
    for d in &mut deltas {
        let before = ticks();
        *d = (ticks() - before) as u32;
    }
    Lat::from_ticks(&deltas, env.tick_ns)
}

fn bufwriter_throughput(env: &Env, src: &Source, size: Size, n: u64) -> (f64, Lat) {
    let dir = env.fresh("bufwriter");
    std::fs::create_dir_all(&dir).unwrap();
    let mut frame = vec![0u8; size.frame()];
    let mut run = |timed: bool| {
        let path = dir.join("frames.bin");
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).unwrap());
        let mut deltas = vec![0u32; if timed { n as usize } else { 0 }];
        let start = Instant::now();
        let mut last = ticks();
        for i in 0..n {
            src.encode(size, i + 1, &mut frame);
            out.write_all(&frame).unwrap();
            if timed {
                let now = ticks();
                deltas[i as usize] = (now - last).min(u64::from(u32::MAX)) as u32;
                last = now;
            }
        }
        out.flush().unwrap();
        let rate = n as f64 / start.elapsed().as_secs_f64();
        drop(out);
        std::fs::remove_file(&path).unwrap();
        (rate, deltas)
    };
    let rate = median((0..env.reps).map(|_| run(false).0).collect());
    let (_, deltas) = run(true);
    std::fs::remove_dir_all(&dir).unwrap();
    (rate, Lat::from_ticks(&deltas, env.tick_ns))
}

fn memcpy_ceiling(src: &Source, size: Size, n: u64) -> f64 {
    let mut buf = vec![1u8; size.frame() * n as usize]; // written: pre-faulted
    let frame = size.frame();
    let start = Instant::now();
    for (i, chunk) in buf.chunks_exact_mut(frame).enumerate() {
        src.encode(size, i as u64 + 1, chunk);
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box(&buf);
    rate
}

fn timer_only(env: &Env) -> Lat {
    let mut deltas = vec![0u32; 1_000_000];
    let mut last = ticks();
    for d in &mut deltas {
        let now = ticks();
        *d = (now - last) as u32;
        last = now;
    }
    Lat::from_ticks(&deltas, env.tick_ns)
}

/// The machine's load average, printed with each section (other work on this VM skews runs).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn append_section(env: &Env, src: &Source, size: Size) {
    println!("\n(load average {})", load());
    let n = env.mib * (1 << 20) / size.frame() as u64;
    let gb = |rate: f64| rate * size.frame() as f64 / 1e9;
    println!(
        "\n## Append, {} B records ({} B frames), `none`, {} records ({} MiB) per run",
        size.body(),
        size.frame(),
        n,
        env.mib
    );

    let config = default_config();
    let mut notes = String::new();
    let journal = median(
        (0..env.reps)
            .map(|_| {
                let (rate, note) = journal_throughput(env, src, size, &config, n, false);
                notes = note;
                rate
            })
            .collect(),
    );
    let (lat, lat_rate, batch_p999) = journal_latency(env, src, size, &config, n, false);

    let off = JournalConfig {
        prefault: false,
        ..default_config()
    };
    let off_rate = median(
        (0..env.reps)
            .map(|_| journal_throughput(env, src, size, &off, n, false).0)
            .collect(),
    );
    let (off_lat, _, off_batch) = journal_latency(env, src, size, &off, n, false);

    let seg = (env.mib * (1 << 20) + (64 << 20)).next_multiple_of(4096);
    let ceiling_cfg = JournalConfig {
        segment_size_bytes: seg,
        prefault_window_bytes: seg,
        maintenance: Maintenance::Manual,
        ..default_config()
    };
    let pre_rate = median(
        (0..env.reps)
            .map(|_| journal_throughput(env, src, size, &ceiling_cfg, n, true).0)
            .collect(),
    );
    let (pre_lat, _, pre_batch) = journal_latency(env, src, size, &ceiling_cfg, n, true);

    let (buf_rate, buf_lat) = bufwriter_throughput(env, src, size, n);
    let mem_rate = median(
        (0..env.reps)
            .map(|_| memcpy_ceiling(src, size, n))
            .collect(),
    );

    println!(
        "| run | M records/s | GB/s | per-append latency (one rdtsc per sample) | mean of 64, p99.9 |"
    );
    println!("|---|---:|---:|---|---:|");
    println!(
        "| journal (default: helper pre-faults {} MiB ahead) | {:.1} | {:.2} | {} | {:.1} ns |",
        config.prefault_window_bytes >> 20,
        journal / 1e6,
        gb(journal),
        lat.row(),
        batch_p999
    );
    println!(
        "| journal, pre-faulting off (first-touch faults) | {:.1} | {:.2} | {} | {:.1} ns |",
        off_rate / 1e6,
        gb(off_rate),
        off_lat.row(),
        off_batch
    );
    println!(
        "| journal into a segment pre-faulted before timing | {:.1} | {:.2} | {} | {:.1} ns |",
        pre_rate / 1e6,
        gb(pre_rate),
        pre_lat.row(),
        pre_batch
    );
    println!(
        "| baseline: BufWriter<File> (1 MiB), same frames | {:.1} | {:.2} | {} | |",
        buf_rate / 1e6,
        gb(buf_rate),
        buf_lat.row()
    );
    println!(
        "| ceiling: same frames into a pre-faulted Vec | {:.1} | {:.2} | | |",
        mem_rate / 1e6,
        gb(mem_rate)
    );
    println!(
        "journal: {notes}; rate while timing every append {:.1} M/s",
        lat_rate / 1e6
    );
    println!(
        "ratios: journal / BufWriter {:.2}x, journal / pre-faulted {:.2}, journal / Vec ceiling {:.2}, pre-fault on / off {:.2}x",
        journal / buf_rate,
        journal / pre_rate,
        journal / mem_rate,
        journal / off_rate
    );
}

/// Lets the disk finish writing back earlier sections' data, so sync latencies are not
/// queued behind it.
fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(2));
}

fn group_commit_section(env: &Env, src: &Source) {
    println!("\n(load average {})", load());
    println!("\n## Group commit, 64 B records: append a batch, then `commit()`");
    println!("| policy | batch | M records/s | syncs | commit p50 | commit p99 | commit max |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    settle();
    let runs: [(&str, Durability, u64, bool); 8] = [
        ("none", Durability::None, 64, true),
        ("sync", Durability::Sync, 1, true),
        ("sync", Durability::Sync, 64, true),
        ("sync, pre-faulting off", Durability::Sync, 64, false),
        ("sync", Durability::Sync, 1024, true),
        (
            "interval 1 ms",
            Durability::Interval { ms: 1, records: 0 },
            64,
            true,
        ),
        (
            "interval 10 ms",
            Durability::Interval { ms: 10, records: 0 },
            64,
            true,
        ),
        (
            "interval 10k records",
            Durability::Interval {
                ms: 0,
                records: 10_000,
            },
            64,
            true,
        ),
    ];
    for (name, durability, batch, prefault) in runs {
        let dir = env.fresh("commit");
        let config = JournalConfig {
            durability,
            prefault,
            ..default_config()
        };
        let mut writer = JournalWriter::open(&dir, config).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut hist = Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).unwrap();
        let start = Instant::now();
        let mut i = 0;
        while start.elapsed() < Duration::from_millis(1500) {
            for _ in 0..batch {
                src.append(&mut writer, Size::B64, i);
                i += 1;
            }
            let t0 = Instant::now();
            writer.commit().unwrap();
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let rate = i as f64 / start.elapsed().as_secs_f64();
        let syncs = writer.stats().syncs;
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1e3;
        println!(
            "| {name} | {batch} | {:.3} | {syncs} | {:.1} us | {:.1} us | {:.1} us |",
            rate / 1e6,
            us(0.5),
            us(0.99),
            hist.max() as f64 / 1e3
        );
    }
}

fn recovery_section(env: &Env, src: &Source) {
    println!("\n(load average {})", load());
    let bytes: u64 = 1 << 30;
    let n = bytes / Size::B64.frame() as u64;
    println!(
        "\n## Recovery over a 1 GiB journal ({n} records of 64 B, 256 MiB segments; page cache warm)"
    );
    settle();
    let dir = env.fresh("recovery");
    let mut writer = JournalWriter::open(&dir, default_config()).unwrap();
    for i in 0..n {
        src.append(&mut writer, Size::B64, i);
    }
    drop(writer);
    let mut scans = Vec::new();
    let mut last = None;
    for _ in 0..env.reps {
        let start = Instant::now();
        let reader = JournalReader::open(&dir).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(reader.last_seq(), n);
        scans.push(reader.report().bytes_scanned as f64 / elapsed.as_secs_f64() / 1e9);
        last = Some((elapsed, reader.report().bytes_scanned));
    }
    let mut resumes = Vec::new();
    for _ in 0..env.reps {
        let start = Instant::now();
        let writer = JournalWriter::open(&dir, default_config()).unwrap();
        resumes.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(writer.next_seq(), n + 1);
    }
    let recover_ms = {
        let start = Instant::now();
        aaiti_journal::recover(&dir).unwrap();
        start.elapsed().as_secs_f64() * 1e3
    };
    let (elapsed, scanned) = last.unwrap();
    println!(
        "reader scan (verify every CRC, build the index): {:.2} GB/s median ({} bytes in {:.0} ms last run)",
        median(scans),
        scanned,
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "time to resume (JournalWriter::open: scan + check the tail is zero + map): {:.0} ms median; recover(): {:.0} ms",
        median(resumes),
        recover_ms
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    let base = std::env::var_os("AAITI_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let env = Env {
        dir: base.join(format!("aaiti-journal-bench-{}", std::process::id())),
        mib: std::env::var("AAITI_BENCH_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        reps: std::env::var("AAITI_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3),
        tick_ns: calibrate(),
    };
    std::fs::create_dir_all(&env.dir).unwrap();
    println!(
        "# aaiti-journal benchmarks (data in {}, TSC {:.3} GHz)",
        env.dir.display(),
        env.tick_ns
    );
    println!("timer only (consecutive rdtsc): {}", timer_only(&env).row());

    let src = Source::new();
    // Warm-up: the VM backs guest memory lazily; touch page cache and memory once first.
    let _ = journal_throughput(
        &env,
        &src,
        Size::B64,
        &default_config(),
        (256 << 20) / 80,
        false,
    );

    let sections = std::env::var("AAITI_BENCH_SECTIONS")
        .unwrap_or_else(|_| "append64,append256,paced,commit,recovery".into());
    let wanted = |name: &str| sections.split(',').any(|s| s == name);
    if wanted("append64") {
        append_section(&env, &src, Size::B64);
    }
    if wanted("append256") {
        append_section(&env, &src, Size::B256);
    }
    if wanted("paced") {
        paced_section(&env, &src, Size::B64, &[5e6, 10e6, 20e6]);
        paced_section(&env, &src, Size::B256, &[2e6, 5e6]);
    }
    if wanted("commit") {
        group_commit_section(&env, &src);
    }
    if wanted("recovery") {
        recovery_section(&env, &src);
    }
    cleanup(&env.dir);
}

fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
