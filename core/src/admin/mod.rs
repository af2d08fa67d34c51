//! Admin commands at run time: read the risk state, change the risk limits, halt, resume,
//! engage the kill switch.
//!
//! A command is an event like any other, so it takes effect between two events and a
//! replay of the journal repeats it at the same place:
//!
//! ```text
//! admin socket / desk admin session
//!   -> AdminHandle::call ----(channel)----> AdminSource (a pipeline source, ADMIN_STREAM)
//!                                              | Control records, journaled
//!                                              v
//!                                           trading stage: applies, answers
//!   <- reply <------(channel, by sequence)------'
//! ```
//!
//! The [`AdminSource`] turns each command into [`Control`] records on [`ADMIN_STREAM`]
//! (a limits change into `limits_chunk` records carrying its TOML text, see
//! [`ControlAction::LimitsChunk`]). The trading stage applies them on its thread, between
//! two events, and answers through [`AdminReplies`] keyed by the record's sequence number;
//! records flagged replay change state the same way but are not answered. Nothing here is on
//! the hot path: the source looks at its channel once per poll (`try_recv`, no allocation
//! when empty).
//!
//! [`socket`] serves the commands to the `aaiti admin` command line over a Unix socket.

pub mod socket;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aaiti_model::{AccountId, Control, ControlAction, RecordHeader, StreamId, UnixNanos};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde::{Deserialize, Serialize};

use crate::runtime::{Emitter, Source, SourceStatus};

/// Stream of the admin commands (a source stream: journaled, replayed on recovery).
pub const ADMIN_STREAM: StreamId = StreamId(900);

/// Largest limits change accepted (its TOML text).
pub const MAX_LIMITS_TEXT: usize = 1 << 20;

/// Bytes of TOML per `limits_chunk` record.
const CHUNK: usize = 64;

/// Most commands taken from the channel per poll.
const COMMANDS_PER_POLL: usize = 16;

/// How long the source keeps a requester waiting for the trading stage's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// An admin command (also the JSON request of the admin socket:
/// `{"command": "halt", "account": "paper-1"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminCommand {
    /// The current risk state: limits, usage, trading states, VaR.
    Risk,
    /// Replace the risk limits with those of a risk configuration (`[risk]` and optionally
    /// `[[accounts]]`, the same keys as the engine's configuration). Accounts must be the
    /// running ones, in the same order; their balances are state and are not changed.
    SetLimits {
        /// The TOML text.
        toml: String,
    },
    /// Halt trading (cancels the open orders) for one account or all.
    Halt {
        /// Account name; none: global.
        #[serde(default)]
        account: Option<String>,
    },
    /// Resume trading for one account (resets its drawdown high-water mark) or all
    /// (releases the global kill switch).
    Resume {
        /// Account name; none: global.
        #[serde(default)]
        account: Option<String>,
    },
    /// The state of one order, by engine order id or by account and client order id (a
    /// desk's status request).
    OrderStatus {
        /// Account name.
        account: String,
        /// Client order id (at most 40 bytes; may be empty when `order_id` is given).
        client_order_id: String,
        /// The engine's order id, when known.
        #[serde(default)]
        order_id: Option<u64>,
    },
    /// Swap a model of the signal stage for another version from the models directory,
    /// without stopping: the new version is loaded and warmed up beside the old one, then
    /// switched between two events; the swap is journaled. A version that does not load
    /// (missing, corrupt, wrong inputs, metadata that does not match) is refused and the
    /// old one keeps serving.
    SwapModel {
        /// The model's name (as in `[[signals.models]]`).
        model: String,
        /// The version; none: the newest in the models directory.
        #[serde(default)]
        version: Option<u32>,
    },
    /// Engage the kill switch: halt, cancel every open order, optionally flatten.
    KillSwitch {
        /// Account name; none: global.
        #[serde(default)]
        account: Option<String>,
        /// Also close the positions with reduce-only market orders.
        #[serde(default)]
        flatten: bool,
    },
}

/// The answer to a command: a JSON document, or why it was refused.
pub type AdminReply = Result<serde_json::Value, String>;

/// A command and where to answer it.
struct AdminRequest {
    command: AdminCommand,
    reply: Sender<AdminReply>,
}

/// Submits admin commands to a running engine (cloneable, any thread).
#[derive(Clone)]
pub struct AdminHandle {
    requests: Sender<AdminRequest>,
}

impl AdminHandle {
    /// Sends `command` without waiting: its answer arrives on the returned channel (an
    /// I/O loop polls it with `try_recv`).
    pub fn submit(&self, command: AdminCommand) -> Receiver<AdminReply> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if let Err(error) = self.requests.send(AdminRequest { command, reply }) {
            let _ = error.0.reply.send(Err("the engine has stopped".to_owned()));
        }
        answer
    }

    /// Sends `command` and waits up to `timeout` for its answer.
    pub fn call(&self, command: AdminCommand, timeout: Duration) -> AdminReply {
        let answer = self.submit(command);
        match answer.recv_timeout(timeout) {
            Ok(reply) => reply,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(format!("no answer within {} s", timeout.as_secs_f64()))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err("the engine stopped before answering".to_owned())
            }
        }
    }
}

/// Loads and warms up a model version beside the serving one (off the pipeline's threads)
/// and returns the version made ready, for [`AdminCommand::SwapModel`].
pub type ModelPreparer = Arc<dyn Fn(&str, Option<u32>) -> Result<u32, String> + Send + Sync>;

/// Longest model name a swap record holds (its text field).
const MODEL_NAME_MAX: usize = 64;

/// A model swap whose new version is being prepared, or is ready.
struct Preparing {
    model: String,
    outcome: Result<u32, String>,
    reply: Sender<AdminReply>,
}

/// The trading stage's side: answers by request sequence number.
#[derive(Clone)]
pub struct AdminReplies {
    replies: Sender<(u64, AdminReply)>,
}

impl AdminReplies {
    /// Answers the command whose (last) record had sequence `seq` on [`ADMIN_STREAM`].
    pub fn answer(&self, seq: u64, reply: AdminReply) {
        // The source may be gone at shutdown; the requester then sees a disconnect.
        let _ = self.replies.send((seq, reply));
    }
}

/// The admin channel: the handle for requesters, the pipeline source, and the trading
/// stage's reply side. `accounts` are the configured account names (ids in order);
/// `trading` says whether a trading stage will answer (without one every command is
/// refused at once).
pub fn channel(accounts: Vec<String>, trading: bool) -> (AdminHandle, AdminSource, AdminReplies) {
    let (requests_tx, requests) = crossbeam_channel::unbounded();
    let (replies_tx, replies) = crossbeam_channel::unbounded();
    (
        AdminHandle {
            requests: requests_tx,
        },
        AdminSource {
            requests,
            replies,
            preparer: None,
            prepared: crossbeam_channel::unbounded(),
            pending: HashMap::new(),
            accounts,
            trading,
            seq: 0,
            counters: AdminCounters::default(),
        },
        AdminReplies {
            replies: replies_tx,
        },
    )
}

#[derive(Debug, Default, Clone, Copy)]
struct AdminCounters {
    commands: u64,
    refused: u64,
    answered: u64,
    timed_out: u64,
}

/// The pipeline source of admin commands (see the [module docs](self)).
pub struct AdminSource {
    requests: Receiver<AdminRequest>,
    replies: Receiver<(u64, AdminReply)>,
    preparer: Option<ModelPreparer>,
    prepared: (Sender<Preparing>, Receiver<Preparing>),
    pending: HashMap<u64, (Sender<AdminReply>, Instant)>,
    accounts: Vec<String>,
    trading: bool,
    seq: u64,
    counters: AdminCounters,
}

impl AdminSource {
    /// Lets [`AdminCommand::SwapModel`] through: `preparer` loads the new version.
    pub fn with_model_preparer(mut self, preparer: ModelPreparer) -> Self {
        self.preparer = Some(preparer);
        self
    }

    /// Starts preparing a model swap on a thread of its own; [`Self::poll`] journals the
    /// swap once the new version is ready (or answers with why it is not).
    fn prepare_swap(&mut self, request: AdminRequest) {
        let AdminCommand::SwapModel { model, version } = &request.command else {
            return;
        };
        let Some(preparer) = self.preparer.clone() else {
            self.counters.refused += 1;
            let _ = request
                .reply
                .send(Err("no signal stage runs in this configuration".to_owned()));
            return;
        };
        if model.is_empty() || model.len() > MODEL_NAME_MAX {
            self.counters.refused += 1;
            let _ = request.reply.send(Err(format!(
                "a model name has 1 to {} bytes",
                MODEL_NAME_MAX
            )));
            return;
        }
        let (model, version) = (model.clone(), *version);
        let done = self.prepared.0.clone();
        let reply = request.reply;
        let spawned = std::thread::Builder::new()
            .name("model-load".into())
            .spawn(move || {
                let outcome = preparer(&model, version);
                let _ = done.send(Preparing {
                    model,
                    outcome,
                    reply,
                });
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a model load");
        }
    }

    /// Journals the swaps whose new version is ready.
    fn emit_prepared(&mut self, out: &mut Emitter<'_>) -> bool {
        let mut emitted = false;
        while let Ok(preparing) = self.prepared.1.try_recv() {
            let version = match preparing.outcome {
                Ok(version) => version,
                Err(error) => {
                    self.counters.refused += 1;
                    let _ = preparing.reply.send(Err(error));
                    continue;
                }
            };
            let mut record = Control::new(
                ControlAction::ModelSwap,
                Control::ALL_ACCOUNTS,
                u64::from(version),
            );
            let name = preparing.model.as_bytes();
            record.text[..name.len()].copy_from_slice(name);
            self.seq += 1;
            out.emit_record(
                RecordHeader::new(ADMIN_STREAM, self.seq, UnixNanos(0), crate::clock::now()),
                &record,
            );
            self.pending
                .insert(self.seq, (preparing.reply, Instant::now()));
            emitted = true;
        }
        emitted
    }

    fn account(&self, name: Option<&String>) -> Result<AccountId, String> {
        let Some(name) = name else {
            return Ok(Control::ALL_ACCOUNTS);
        };
        self.accounts
            .iter()
            .position(|known| known == name)
            .map(|index| AccountId(index as u32))
            .ok_or_else(|| {
                format!(
                    "no account named {name:?} (accounts: {})",
                    self.accounts.join(", ")
                )
            })
    }

    /// The records of one command, or why it is refused before reaching the engine.
    fn records(&self, command: &AdminCommand) -> Result<Vec<Control>, String> {
        let control = |action, account, arg| Control::new(action, account, arg);
        Ok(match command {
            AdminCommand::Risk => {
                vec![control(ControlAction::RiskReport, Control::ALL_ACCOUNTS, 0)]
            }
            AdminCommand::Halt { account } => vec![control(
                ControlAction::Halt,
                self.account(account.as_ref())?,
                0,
            )],
            AdminCommand::Resume { account } => vec![control(
                ControlAction::Resume,
                self.account(account.as_ref())?,
                0,
            )],
            AdminCommand::KillSwitch { account, flatten } => vec![control(
                ControlAction::KillSwitch,
                self.account(account.as_ref())?,
                u64::from(*flatten),
            )],
            AdminCommand::SetLimits { toml } => limits_chunks(toml, self.seq + 1)?,
            // Journaled once the new version is ready (`emit_prepared`).
            AdminCommand::SwapModel { .. } => Vec::new(),
            AdminCommand::OrderStatus {
                account,
                client_order_id,
                order_id,
            } => {
                let bytes = client_order_id.as_bytes();
                if bytes.len() > 40 || (bytes.is_empty() && order_id.is_none()) {
                    return Err(
                        "name the order: an order id, or a client order id of 1 to 40 bytes"
                            .to_owned(),
                    );
                }
                let mut record = control(
                    ControlAction::OrderStatus,
                    self.account(Some(account))?,
                    order_id.unwrap_or(0),
                );
                record.text[..bytes.len()].copy_from_slice(bytes);
                vec![record]
            }
        })
    }

    fn take_command(&mut self, request: AdminRequest, out: &mut Emitter<'_>) {
        self.counters.commands += 1;
        if matches!(request.command, AdminCommand::SwapModel { .. }) {
            self.prepare_swap(request);
            return;
        }
        let records = if self.trading {
            self.records(&request.command)
        } else {
            Err(
                "trading is disabled in this configuration ([trading] enabled = false or no \
                 [[accounts]])"
                    .to_owned(),
            )
        };
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                self.counters.refused += 1;
                let _ = request.reply.send(Err(error));
                return;
            }
        };
        // ts_event 0: the command happens at the engine's current time.
        let now = crate::clock::now();
        for record in &records {
            self.seq += 1;
            out.emit_record(
                RecordHeader::new(ADMIN_STREAM, self.seq, UnixNanos(0), now),
                record,
            );
        }
        self.pending
            .insert(self.seq, (request.reply, Instant::now()));
    }
}

/// Splits a limits change into `limits_chunk` records whose first sequence is `first_seq`.
fn limits_chunks(text: &str, first_seq: u64) -> Result<Vec<Control>, String> {
    if text.len() > MAX_LIMITS_TEXT {
        return Err(format!(
            "the limits text is {} bytes; the most is {MAX_LIMITS_TEXT}",
            text.len()
        ));
    }
    if text.contains('\0') {
        return Err("the limits text contains a NUL byte".to_owned());
    }
    // Refuse what cannot parse before it reaches the journal; the trading stage checks the
    // values against the instruments and accounts.
    toml::from_str::<aaiti_risk::config::RiskConfigFile>(text)
        .map_err(|error| format!("limits: {error}"))?;
    let pieces: Vec<&[u8]> = if text.is_empty() {
        vec![&[]]
    } else {
        text.as_bytes().chunks(CHUNK).collect()
    };
    let count = pieces.len() as u64;
    if first_seq > u64::from(u32::MAX) {
        return Err("the admin stream's sequence numbers are exhausted".to_owned());
    }
    Ok(pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| {
            let mut control = Control::new(
                ControlAction::LimitsChunk,
                Control::ALL_ACCOUNTS,
                first_seq << 32 | (index as u64) << 16 | count,
            );
            control.text[..piece.len()].copy_from_slice(piece);
            control
        })
        .collect())
}

/// The risk configuration `patch` (TOML) describes over `current`: tables merge key by key,
/// arrays (`[[accounts]]`, `[[risk.instruments]]`, `disabled_venues`) replace whole.
///
/// # Errors
///
/// `patch` is not TOML, or the result is not a risk configuration (unknown key, wrong type).
pub fn merge_risk_file(
    current: &aaiti_risk::config::RiskConfigFile,
    patch: &str,
) -> Result<aaiti_risk::config::RiskConfigFile, String> {
    let patch: toml::Table = toml::from_str(patch).map_err(|error| format!("limits: {error}"))?;
    let mut merged = toml::Table::try_from(current)
        .map_err(|error| format!("current limits as TOML: {error}"))?;
    merge_tables(&mut merged, patch);
    toml::Value::Table(merged)
        .try_into()
        .map_err(|error: toml::de::Error| format!("limits: {error}"))
}

fn merge_tables(base: &mut toml::Table, patch: toml::Table) {
    for (key, value) in patch {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(patch)) => {
                merge_tables(base, patch);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Reassembles `limits_chunk` records (the trading stage's side).
#[derive(Debug, Default)]
pub struct LimitsAssembler {
    first_seq: u64,
    next_index: u64,
    text: Vec<u8>,
}

/// One `limits_chunk` record's outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// More pieces to come.
    Partial,
    /// The whole text.
    Complete(String),
    /// A piece out of order or a text that is not UTF-8: the change is dropped.
    Broken(String),
}

impl LimitsAssembler {
    /// Takes one piece.
    pub fn push(&mut self, control: &Control) -> Assembled {
        let first_seq = control.arg >> 32;
        let index = (control.arg >> 16) & 0xffff;
        let count = control.arg & 0xffff;
        if index == 0 {
            self.first_seq = first_seq;
            self.next_index = 0;
            self.text.clear();
        }
        if first_seq != self.first_seq || index != self.next_index || index >= count {
            self.next_index = u64::MAX;
            return Assembled::Broken(format!(
                "limits piece {index} of {count} (change {first_seq}) arrived out of order"
            ));
        }
        let used = control
            .text
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last + 1);
        if self.text.len() + used > MAX_LIMITS_TEXT {
            self.next_index = u64::MAX;
            return Assembled::Broken("the limits text is too long".to_owned());
        }
        self.text.extend_from_slice(&control.text[..used]);
        self.next_index += 1;
        if self.next_index < count {
            return Assembled::Partial;
        }
        let text = std::mem::take(&mut self.text);
        match String::from_utf8(text) {
            Ok(text) => Assembled::Complete(text),
            Err(_) => Assembled::Broken("the limits text is not UTF-8".to_owned()),
        }
    }
}

impl Source for AdminSource {
    fn name(&self) -> &str {
        "admin"
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        let mut status = SourceStatus::Idle;
        for _ in 0..COMMANDS_PER_POLL {
            match self.requests.try_recv() {
                Ok(request) => {
                    self.take_command(request, out);
                    status = SourceStatus::Busy;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if self.emit_prepared(out) {
            status = SourceStatus::Busy;
        }
        if self.pending.is_empty() {
            return status;
        }
        while let Ok((seq, reply)) = self.replies.try_recv() {
            if let Some((requester, _)) = self.pending.remove(&seq) {
                self.counters.answered += 1;
                let _ = requester.send(reply);
            }
        }
        let counters = &mut self.counters;
        self.pending.retain(|_, (requester, since)| {
            let waiting = since.elapsed() < REPLY_TIMEOUT;
            if !waiting {
                counters.timed_out += 1;
                let _ = requester.send(Err("the trading stage did not answer".to_owned()));
            }
            waiting
        });
        status
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.seq = last_seq;
    }

    fn keeps_running(&self) -> bool {
        false
    }

    fn report(&self) -> Vec<(String, u64)> {
        let c = self.counters;
        vec![
            ("commands".to_owned(), c.commands),
            ("refused".to_owned(), c.refused),
            ("answered".to_owned(), c.answered),
            ("timed_out".to_owned(), c.timed_out),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_text_round_trips_through_its_pieces() {
        let text = format!(
            "[risk.account_defaults]\nmax_open_orders = 7\n{}",
            "# a comment that makes the text longer than one piece\n".repeat(5)
        );
        let pieces = limits_chunks(&text, 41).unwrap();
        assert_eq!(pieces.len(), text.len().div_ceil(CHUNK));
        let mut assembler = LimitsAssembler::default();
        let mut outcome = Assembled::Partial;
        for piece in &pieces {
            assert_eq!(outcome, Assembled::Partial);
            outcome = assembler.push(piece);
        }
        assert_eq!(outcome, Assembled::Complete(text));
    }

    #[test]
    fn a_missing_piece_breaks_the_change() {
        let text = format!(
            "[risk]\nvaluation_currency = \"USD\"\n{}",
            "# padding\n".repeat(20)
        );
        let pieces = limits_chunks(&text, 7).unwrap();
        let mut assembler = LimitsAssembler::default();
        assert_eq!(assembler.push(&pieces[0]), Assembled::Partial);
        assert!(matches!(assembler.push(&pieces[2]), Assembled::Broken(_)));
        // A later change starts clean.
        for (index, piece) in pieces.iter().enumerate() {
            let outcome = assembler.push(piece);
            if index + 1 == pieces.len() {
                assert_eq!(outcome, Assembled::Complete(text.clone()));
            }
        }
    }

    #[test]
    fn unparsable_limits_never_reach_the_journal() {
        assert!(limits_chunks("[risk\n", 1).unwrap_err().contains("limits"));
        assert!(limits_chunks("[risk]\nnot_a_key = 1\n", 1).is_err());
        assert!(limits_chunks("a\0", 1).unwrap_err().contains("NUL"));
        assert_eq!(limits_chunks("", 1).unwrap().len(), 1);
    }

    #[test]
    fn commands_read_as_json() {
        let command: AdminCommand =
            serde_json::from_str(r#"{"command":"kill_switch","account":"a","flatten":true}"#)
                .unwrap();
        assert_eq!(
            command,
            AdminCommand::KillSwitch {
                account: Some("a".into()),
                flatten: true
            }
        );
        assert!(serde_json::from_str::<AdminCommand>(r#"{"command":"explode"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<AdminCommand>(r#"{"command":"risk"}"#).unwrap(),
            AdminCommand::Risk
        );
    }
}
