//! The admin socket: a Unix socket in the data directory (`admin.sock`, mode 0600) that
//! serves [`AdminCommand`]s to the `aaiti admin` command line.
//!
//! Protocol: one JSON object per line each way. The request is an [`AdminCommand`]
//! (`{"command":"risk"}`, `{"command":"set_limits","toml":"..."}`,
//! `{"command":"halt","account":"paper-1"}`, `{"command":"resume"}`,
//! `{"command":"kill_switch","flatten":true}`); the answer is `{"ok":true,"result":...}` or
//! `{"ok":false,"error":"..."}`. A connection may send several requests; a line longer than
//! [`MAX_LINE`] or that is not a command is answered with an error and the connection
//! closed. Only the owner of the data directory can connect (file mode 0600).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AdminCommand, AdminHandle, AdminReply, MAX_LIMITS_TEXT};

/// Longest request line (a limits change with its JSON escaping, plus room).
pub const MAX_LINE: usize = 2 * MAX_LIMITS_TEXT + 4096;

/// Most connections served at once.
const MAX_CONNECTIONS: usize = 8;

/// How long a command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// The answer line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// Whether the command was applied.
    pub ok: bool,
    /// Its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<AdminReply> for Answer {
    fn from(reply: AdminReply) -> Self {
        match reply {
            Ok(result) => Self {
                ok: true,
                result: Some(result),
                error: None,
            },
            Err(error) => Self {
                ok: false,
                result: None,
                error: Some(error),
            },
        }
    }
}

/// A running admin socket; removes its file when dropped.
pub struct AdminServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Listens at `path` (a stale socket left by a killed engine is replaced; a live one
    /// is an error: another engine uses this data directory).
    ///
    /// # Errors
    ///
    /// The socket cannot be created.
    pub fn start(path: &Path, handle: AdminHandle) -> std::io::Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: another engine runs on this data directory",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("admin-socket".into())
                .spawn(move || serve(&listener, &handle, &stop))?
        };
        Ok(Self {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: &UnixListener, handle: &AdminHandle, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Acquire) >= MAX_CONNECTIONS {
                    let _ = answer(
                        &stream,
                        &Answer::from(Err("too many admin connections".to_owned())),
                    );
                    continue;
                }
                active.fetch_add(1, Ordering::AcqRel);
                let handle = handle.clone();
                let active = Arc::clone(&active);
                let spawned =
                    std::thread::Builder::new()
                        .name("admin-conn".into())
                        .spawn(move || {
                            connection(stream, &handle);
                            active.fetch_sub(1, Ordering::AcqRel);
                        });
                if spawned.is_err() {
                    tracing::warn!("admin socket: cannot start a connection thread");
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => {
                tracing::warn!(%error, "admin socket: accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn answer(mut stream: &UnixStream, answer: &Answer) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(answer).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

fn connection(stream: UnixStream, handle: &AdminHandle) {
    if stream.set_nonblocking(false).is_err()
        || stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .is_err()
    {
        return;
    }
    let mut reader = BufReader::new(&stream).take(MAX_LINE as u64 + 1);
    let mut line = Vec::new();
    loop {
        line.clear();
        reader.set_limit(MAX_LINE as u64 + 1);
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let _ = answer(
                &stream,
                &Answer::from(Err(format!("request longer than {MAX_LINE} bytes"))),
            );
            return;
        }
        let reply = match serde_json::from_slice::<AdminCommand>(&line) {
            Ok(command) => {
                tracing::info!(?command, "admin command");
                handle.call(command, COMMAND_TIMEOUT)
            }
            Err(error) => Err(format!("not an admin command: {error}")),
        };
        if answer(&stream, &Answer::from(reply)).is_err() {
            return;
        }
    }
}

/// Sends one command to the engine serving `path` and returns its answer.
///
/// # Errors
///
/// No engine listens there, or the connection failed.
pub fn request(path: &Path, command: &AdminCommand) -> anyhow::Result<Answer> {
    let mut stream = UnixStream::connect(path).map_err(|error| {
        anyhow::anyhow!(
            "cannot reach an engine at {} ({error}); is `aaiti run` running with this data \
             directory?",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT + Duration::from_secs(5)))?;
    let mut line = serde_json::to_vec(command)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if reply.is_empty() {
        anyhow::bail!("the engine closed the admin connection without answering");
    }
    Ok(serde_json::from_str(&reply)?)
}
