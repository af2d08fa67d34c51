//! `verify`: every check the journal format allows, read-only.
//!
//! Opening a [`JournalReader`] already checks segment headers (magic, version, CRC, index,
//! size), every frame's length word, CRC, body structure and journal-sequence continuity
//! within and across segments. On top of that this checks each envelope's contents
//! ([`Envelope::validate`]: kind, payload length, enum codes), non-zero receive times, and
//! per-stream sequence continuity (a jump means records of that stream never reached the
//! journal). It never calls [`aaiti_journal::recover`], which would cut a torn tail.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use aaiti_journal::{FrameBody, JournalError, JournalReader};
use aaiti_model::Envelope;
use serde_json::{Value as Json, json};

use super::Context;
use super::error::{CliError, EXIT_PROBLEMS};
use super::source::{self, Progress};

/// How bad a finding is: errors fail verification, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
}

/// One finding, located as precisely as known.
#[derive(Debug, Clone)]
struct Problem {
    severity: Severity,
    segment: Option<u64>,
    offset: Option<u64>,
    seq: Option<u64>,
    message: String,
}

impl Problem {
    fn json(&self) -> Json {
        json!({
            "severity": match self.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "segment": self.segment,
            "offset": self.offset,
            "seq": self.seq,
            "message": self.message,
        })
    }

    fn text(&self) -> String {
        let mut location = Vec::new();
        if let Some(s) = self.segment {
            location.push(format!("segment {s}"));
        }
        if let Some(o) = self.offset {
            location.push(format!("offset {o}"));
        }
        if let Some(q) = self.seq {
            location.push(format!("seq {q}"));
        }
        let severity = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "warning",
        };
        if location.is_empty() {
            format!("{severity}: {}", self.message)
        } else {
            format!("{severity}: [{}] {}", location.join(", "), self.message)
        }
    }
}

/// Collected findings, listing at most `max` (all are counted).
struct Findings {
    listed: Vec<Problem>,
    max: usize,
    errors: u64,
    warnings: u64,
}

impl Findings {
    fn add(&mut self, problem: Problem) {
        match problem.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
        }
        if self.listed.len() < self.max {
            self.listed.push(problem);
        }
    }
}

/// Location fields of an open error, when it has them.
fn locate(error: &JournalError) -> (Option<u64>, Option<u64>, Option<u64>) {
    match error {
        JournalError::CorruptFrame {
            segment,
            offset,
            seq,
            ..
        } => (Some(*segment), Some(*offset), Some(*seq)),
        JournalError::SequenceGap {
            segment, expected, ..
        } => (Some(*segment), None, Some(*expected)),
        _ => (None, None, None),
    }
}

/// Per-stream state: the last `seq` seen and where.
struct StreamState {
    last: u64,
}

/// `verify`: returns 0 when clean, [`EXIT_PROBLEMS`] when any error was found.
pub(crate) fn run(
    path: &Path,
    ctx: &Context,
    as_json: bool,
    max: usize,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let mut findings = Findings {
        listed: Vec::new(),
        max,
        errors: 0,
        warnings: 0,
    };
    let reader = match source::open_reader(path, ctx.progress) {
        Ok(reader) => Some(reader),
        Err(error) if error.exit_code() == EXIT_PROBLEMS => {
            let (segment, offset, seq) = match &error {
                CliError::Journal(e) => locate(e),
                _ => (None, None, None),
            };
            findings.add(Problem {
                severity: Severity::Error,
                segment,
                offset,
                seq,
                message: error.to_string(),
            });
            None
        }
        Err(error) => return Err(error),
    };
    let mut records = 0u64;
    if let Some(reader) = &reader {
        records = check(reader, ctx, &mut findings)?;
    }
    let ok = findings.errors == 0;
    if as_json {
        let value = json!({
            "ok": ok,
            "path": path.display().to_string(),
            "journal_dir": reader.as_ref().map(|r| r.dir().display().to_string()),
            "segments": reader.as_ref().map(|r| r.segments().count()),
            "records": records,
            "first_seq": reader.as_ref().map(JournalReader::first_seq),
            "last_seq": reader.as_ref().map(JournalReader::last_seq),
            "errors": findings.errors,
            "warnings": findings.warnings,
            "problems": findings.listed.iter().map(Problem::json).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for problem in &findings.listed {
            writeln!(out, "{}", problem.text())?;
        }
        let unlisted =
            (findings.errors + findings.warnings).saturating_sub(findings.listed.len() as u64);
        if unlisted > 0 {
            writeln!(
                out,
                "... and {unlisted} more (raise --max-problems to list them)"
            )?;
        }
        let what = match &reader {
            Some(r) => format!(
                "{} records (sequences {}..={}) in {} segments of {}",
                records,
                r.first_seq(),
                r.last_seq(),
                r.segments().count(),
                r.dir().display()
            ),
            None => path.display().to_string(),
        };
        if ok {
            writeln!(out, "OK: {what}; {} warnings", findings.warnings)?;
        } else {
            writeln!(
                out,
                "FAILED: {what}; {} errors, {} warnings",
                findings.errors, findings.warnings
            )?;
        }
    }
    Ok(if ok { 0 } else { EXIT_PROBLEMS })
}

/// The checks beyond what opening did; returns the number of records read.
fn check(reader: &JournalReader, ctx: &Context, findings: &mut Findings) -> Result<u64, CliError> {
    let report = reader.report();
    if let Some(t) = &report.torn_tail {
        findings.add(Problem {
            severity: Severity::Error,
            segment: Some(t.segment),
            offset: Some(t.offset),
            seq: Some(t.seq),
            message: format!(
                "{}: torn tail ({:?}; {} bytes): the journal's data ends before it. A writer \
                 (or `recover`) would cut it",
                t.path.display(),
                t.fault,
                t.bytes
            ),
        });
    }
    // Leftovers of a crash while creating a segment (a writer removes them on open).
    if let Ok(entries) = std::fs::read_dir(reader.dir()) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if name
                .to_str()
                .and_then(|n| n.strip_suffix(".tmp"))
                .is_some_and(source::is_segment_name)
            {
                findings.add(Problem {
                    severity: Severity::Warning,
                    segment: None,
                    offset: None,
                    seq: None,
                    message: format!(
                        "{}: half-created segment file left by a crash",
                        entry.path().display()
                    ),
                });
            }
        }
    }
    let mut streams: HashMap<u16, StreamState> = HashMap::new();
    let mut bar = Progress::bar(ctx.progress, reader.len(), "verify");
    let mut records = 0u64;
    let mut expected_seq = reader.first_seq();
    for frame in reader.iter() {
        bar.tick();
        records += 1;
        let at = |severity, message| Problem {
            severity,
            segment: Some(frame.segment()),
            offset: Some(frame.offset()),
            seq: Some(frame.seq()),
            message,
        };
        if frame.seq() != expected_seq {
            findings.add(at(
                Severity::Error,
                format!(
                    "journal sequence {} where {expected_seq} was expected",
                    frame.seq()
                ),
            ));
        }
        expected_seq = frame.seq() + 1;
        if frame.ts_recv().0 == 0 {
            findings.add(at(Severity::Error, "receive timestamp is zero".into()));
        }
        let FrameBody::Envelope(bytes) = frame.body() else {
            continue;
        };
        let envelope = match Envelope::from_bytes(bytes) {
            Ok(envelope) => envelope,
            Err(error) => {
                findings.add(at(Severity::Error, format!("invalid envelope: {error}")));
                continue;
            }
        };
        let h = envelope.header;
        if h.seq == 0 {
            findings.add(at(
                Severity::Error,
                format!("stream {}: sequence 0 (streams number from 1)", h.stream.0),
            ));
            continue;
        }
        match streams.get_mut(&h.stream.0) {
            None => {
                streams.insert(h.stream.0, StreamState { last: h.seq });
            }
            Some(state) => {
                if h.seq == state.last + 1 {
                    // The normal case.
                } else if h.seq > state.last + 1 {
                    findings.add(at(
                        Severity::Error,
                        format!(
                            "stream {}: sequence jumps from {} to {} ({} records missing)",
                            h.stream.0,
                            state.last,
                            h.seq,
                            h.seq - state.last - 1
                        ),
                    ));
                } else if h.seq == 1 {
                    findings.add(at(
                        Severity::Warning,
                        format!(
                            "stream {}: numbering restarts at 1 after {} (a restart?)",
                            h.stream.0, state.last
                        ),
                    ));
                } else {
                    findings.add(at(
                        Severity::Error,
                        format!(
                            "stream {}: sequence {} after {} (duplicate or out of order)",
                            h.stream.0, h.seq, state.last
                        ),
                    ));
                }
                state.last = h.seq;
            }
        }
    }
    bar.finish();
    if records != reader.len() {
        findings.add(Problem {
            severity: Severity::Error,
            segment: None,
            offset: None,
            seq: None,
            message: format!(
                "read {records} records but the scan counted {}",
                reader.len()
            ),
        });
    }
    Ok(records)
}
