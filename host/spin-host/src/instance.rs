//! Per-component context (built once at start-up) and per-instance state (built for every
//! request or message, as Spin does: one fresh `Store` each time).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use anyhow::Result;
use spin_app::allowed_hosts::AllowedHosts;
use spin_app::variables::Resolver;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::KeyValueStore;
use crate::outbound_http::OutboundHttpPolicy;
use crate::sqlite::SqliteDatabase;

/// Everything about one component that does not change between instances.
pub struct ComponentContext {
    pub id: String,
    pub spec: spin_app::Component,
    pub environment: Vec<(String, String)>,
    /// The read-only snapshot of the component's `files`, preopened as the guest's `/`.
    pub files_dir: Option<FilesSnapshot>,
    pub allowed_hosts: AllowedHosts,
    pub key_value_stores: HashMap<String, Arc<KeyValueStore>>,
    pub sqlite_databases: HashMap<String, Arc<SqliteDatabase>>,
    pub variables: Arc<Resolver>,
    pub stdout: GuestOutput,
    pub stderr: GuestOutput,
    pub stats: Arc<crate::stats::ComponentStats>,
    /// How many of its HTTP instances run at once ([`crate::admission`]).
    pub admission: Arc<crate::admission::Admission>,
}

/// A component's own copy of its `files`. `watch` gives a component a fresh copy when they
/// change, so a copy is deleted only when the last instance that may read it is gone.
pub struct FilesSnapshot(pub PathBuf);

impl Drop for FilesSnapshot {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The data of one `Store`: one request or one Redis message.
pub struct InstanceState {
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub http_policy: OutboundHttpPolicy,
    pub component: Arc<ComponentContext>,
    /// The instance's linear memory, as the store's limiter once an HTTP instance is admitted.
    pub memory: crate::admission::MemoryAccount,
}

impl InstanceState {
    pub fn new(component: &Arc<ComponentContext>) -> Result<Self> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&component.environment)
            .stdout(component.stdout.clone())
            .stderr(component.stderr.clone())
            .allow_ip_name_lookup(true);
        if let Some(files) = &component.files_dir {
            wasi.preopened_dir(&files.0, "/", FsPerms::ReadOnly)?;
        }
        let hosts = component.allowed_hosts.clone();
        let id = component.id.clone();
        wasi.socket_addr_check(move |addr, use_| {
            let hosts = hosts.clone();
            let id = id.clone();
            Box::pin(async move { crate::outbound_http::socket_allowed(&id, &hosts, addr, use_) })
        });
        Ok(Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            http_policy: OutboundHttpPolicy::new(component.clone()),
            component: component.clone(),
            memory: crate::admission::MemoryAccount::default(),
        })
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// A guest's stdout or stderr: each complete line goes to the host's stderr prefixed with the
/// component id, and unprefixed to `<log dir>/<id>_<stream>.txt` as Spin writes it.
#[derive(Clone)]
pub struct GuestOutput {
    prefix: Arc<str>,
    echo: bool,
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl GuestOutput {
    pub fn new(component_id: &str, echo: bool, file: Option<std::fs::File>) -> Self {
        Self {
            prefix: format!("[{component_id}] ").into(),
            echo,
            file: file.map(|f| Arc::new(Mutex::new(f))),
        }
    }

    fn emit(&self, bytes: &[u8]) {
        if self.echo {
            let mut line = Vec::with_capacity(self.prefix.len() + bytes.len() + 1);
            line.extend_from_slice(self.prefix.as_bytes());
            line.extend_from_slice(bytes);
            if !bytes.ends_with(b"\n") {
                line.push(b'\n');
            }
            // Logging must never fail a request; a closed stderr is not the guest's problem.
            std::io::stderr().write_all(&line).ok();
        }
        if let Some(file) = &self.file
            && let Ok(mut file) = file.lock()
        {
            file.write_all(bytes).ok();
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        })
    }
}

/// Buffers a guest's writes until a newline, so that lines of concurrent instances do not
/// interleave in the host's log.
struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn flush_complete_lines(&mut self) {
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.output.emit(&line);
        }
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.pending.extend_from_slice(buf);
        self.flush_complete_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.output.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.output.emit(&rest);
        }
    }
}
