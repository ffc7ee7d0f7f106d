//! What the host gives a guest: its ports and the runtime services, over its process context.

use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::flowd::component::{ports, runtime, types};
use super::bindings::{
    GuestInport, GuestOutport, LogLevel, PackedIps, PortError, WitIp, WitReceived, pack, unpack,
};
use super::drive::Offload;
use super::sandbox::{MemoryLimiter, Watchdog};
use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, Received};
use crate::ip::Ip;

/// The data of a guest's store: its process context and its sandbox.
pub(crate) struct HostState {
    /// The process's context; away only while an offloaded wait has it.
    pub(crate) ctx: Option<ProcessContext>,
    /// Where host calls hand their waits to the driver.
    pub(crate) offload: Offload,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) net: super::net::NetHooks,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) watchdog: Watchdog,
    /// Port handles the guest holds; capped so that a guest cannot grow host memory by
    /// opening ports in a loop.
    pub(crate) handles: usize,
}

/// The most port handles a guest may hold at once.
const MAX_HANDLES: usize = 10_000;

/// Host calls return `wasmtime::Result<Result<T, PortError>>`: the outer error traps.
type PortResult<T> = wasmtime::Result<Result<T, PortError>>;

impl HostState {
    /// Counts a host call, so the watchdog knows the guest is not spinning.
    fn enter(&mut self) -> wasmtime::Result<&mut ProcessContext> {
        self.watchdog.host_calls = self.watchdog.host_calls.wrapping_add(1);
        self.ctx.as_mut().ok_or_else(context_away)
    }

    /// Runs `op` on the process's context off the guest's fiber, where it may wait (see
    /// [`super::drive`]). A panic in `op` traps the guest and keeps the context.
    async fn waiting<T: Send + 'static>(
        &mut self,
        op: impl FnOnce(&mut ProcessContext) -> T + Send + 'static,
    ) -> wasmtime::Result<T> {
        self.watchdog.host_calls = self.watchdog.host_calls.wrapping_add(1);
        let mut ctx = self.ctx.take().ok_or_else(context_away)?;
        let done = self
            .offload
            .run(move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(&mut ctx)));
                (ctx, result)
            })
            .await;
        let Some((ctx, result)) = done else {
            wasmtime::bail!("the guest's call was abandoned while it waited");
        };
        self.ctx = Some(ctx);
        result.map_err(|_| wasmtime::format_err!("the host panicked serving this guest"))
    }

    /// Receives a batch of up to `max` IPs on `handle`'s port, waiting for the first off the
    /// guest's fiber only if none has arrived.
    async fn receive_batch(
        &mut self,
        handle: &Resource<GuestInport>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<Ip>, ProcessError>> {
        let port = self.inport(handle)?;
        let max = (max as usize).max(1);
        let ctx = self.enter()?;
        match ctx.try_recv(port) {
            Ok(Some(first)) => {
                let mut batch = vec![first];
                ctx.take_arrived(port, &mut batch, max - 1);
                Ok(Ok(batch))
            }
            // Empty, or ended: `recv_batch` tells which, waiting if need be.
            Ok(None) => {
                self.waiting(move |ctx| {
                    let mut batch = Vec::new();
                    ctx.recv_batch(port, &mut batch, max).map(|_| batch)
                })
                .await
            }
            Err(error) => Ok(Err(error)),
        }
    }

    /// Counts a new handle, trapping the guest past [`MAX_HANDLES`].
    fn new_handle(&mut self) -> wasmtime::Result<()> {
        if self.handles >= MAX_HANDLES {
            wasmtime::bail!("opened more than {MAX_HANDLES} port handles without dropping them");
        }
        self.handles += 1;
        Ok(())
    }

    fn inport(&self, handle: &Resource<GuestInport>) -> wasmtime::Result<InPort> {
        Ok(self.table.get(handle)?.port)
    }

    fn outport(&self, handle: &Resource<GuestOutport>) -> wasmtime::Result<OutPort> {
        Ok(self.table.get(handle)?.port)
    }
}

/// The error for a host call that finds the context away: only a call made while another
/// waits, which a guest (one fiber) cannot do.
fn context_away() -> wasmtime::Error {
    wasmtime::format_err!("the process context is in use by another host call")
}

fn port_result<T>(result: Result<T, ProcessError>) -> PortResult<T> {
    Ok(result.map_err(PortError::from))
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.net,
        }
    }
}

impl types::Host for HostState {}

impl ports::Host for HostState {
    fn open_inport(
        &mut self,
        name: String,
        index: Option<u32>,
    ) -> PortResult<Resource<GuestInport>> {
        let ctx = self.enter()?;
        let port = match index {
            Some(i) => ctx.inport_at(&name, i as usize),
            None => ctx.inport(&name),
        };
        match port {
            Ok(port) => {
                self.new_handle()?;
                Ok(Ok(self.table.push(GuestInport { port })?))
            }
            Err(error) => port_result(Err(error)),
        }
    }

    fn open_outport(
        &mut self,
        name: String,
        index: Option<u32>,
    ) -> PortResult<Resource<GuestOutport>> {
        let ctx = self.enter()?;
        let port = match index {
            Some(i) => ctx.outport_at(&name, i as usize),
            None => ctx.outport(&name),
        };
        match port {
            Ok(port) => {
                self.new_handle()?;
                Ok(Ok(self.table.push(GuestOutport { port })?))
            }
            Err(error) => port_result(Err(error)),
        }
    }

    fn inport_indexes(&mut self, name: String) -> wasmtime::Result<Vec<u32>> {
        let indexes = self.enter()?.inport_indexes(&name);
        Ok(indexes
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect())
    }

    fn outport_indexes(&mut self, name: String) -> wasmtime::Result<Vec<u32>> {
        let indexes = self.enter()?.outport_indexes(&name);
        Ok(indexes
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect())
    }

    async fn recv_any(
        &mut self,
        handles: Vec<Resource<GuestInport>>,
        timeout_ms: Option<u32>,
    ) -> PortResult<WitReceived> {
        let ports = handles
            .iter()
            .map(|h| self.inport(h))
            .collect::<wasmtime::Result<Vec<InPort>>>()?;
        let received = self
            .waiting(move |ctx| {
                let received = match timeout_ms {
                    Some(ms) => ctx.recv_any_timeout(&ports, Duration::from_millis(u64::from(ms))),
                    None => ctx.recv_any(&ports),
                };
                let position = |port: InPort| {
                    let at = ports.iter().position(|p| *p == port).unwrap_or(0);
                    u32::try_from(at).unwrap_or(u32::MAX)
                };
                received.map(|r| match r {
                    Received::Ip(port, ip) => WitReceived::Ip((position(port), ip.into())),
                    Received::Ended(port) => WitReceived::Ended(position(port)),
                    Received::AllEnded => WitReceived::AllEnded,
                    Received::Timeout => WitReceived::Timeout,
                })
            })
            .await?;
        port_result(received)
    }

    async fn read_config(&mut self, name: String) -> PortResult<Option<Vec<u8>>> {
        let config = self
            .waiting(move |ctx| ctx.read_config(&name).map(|p| p.map(|p| p.to_vec())))
            .await?;
        port_result(config)
    }

    async fn flush(&mut self) -> PortResult<()> {
        port_result(self.waiting(ProcessContext::flush).await?)
    }
}

impl ports::HostInport for HostState {
    async fn recv(&mut self, handle: Resource<GuestInport>) -> PortResult<Option<WitIp>> {
        let port = self.inport(&handle)?;
        // Without a wait, the guest need not give its fiber up.
        match self.enter()?.try_recv(port) {
            Ok(Some(ip)) => return Ok(Ok(Some(ip.into()))),
            Ok(None) => {}
            Err(error) => return port_result(Err(error)),
        }
        let received = self.waiting(move |ctx| ctx.recv(port)).await?;
        port_result(received.map(|ip| ip.map(WitIp::from)))
    }

    async fn recv_batch(
        &mut self,
        handle: Resource<GuestInport>,
        max: u32,
    ) -> PortResult<Vec<WitIp>> {
        let batch = self.receive_batch(&handle, max).await?;
        port_result(batch.map(|batch| batch.into_iter().map(WitIp::from).collect()))
    }

    async fn recv_packed(
        &mut self,
        handle: Resource<GuestInport>,
        max: u32,
    ) -> PortResult<PackedIps> {
        let batch = self.receive_batch(&handle, max).await?;
        port_result(batch.map(pack))
    }

    fn try_recv(&mut self, handle: Resource<GuestInport>) -> PortResult<Option<WitIp>> {
        let port = self.inport(&handle)?;
        port_result(self.enter()?.try_recv(port).map(|ip| ip.map(WitIp::from)))
    }

    fn is_ended(&mut self, handle: Resource<GuestInport>) -> wasmtime::Result<bool> {
        let port = self.inport(&handle)?;
        Ok(self.enter()?.is_ended(port))
    }

    fn drop(&mut self, handle: Resource<GuestInport>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

impl ports::HostOutport for HostState {
    async fn send(&mut self, handle: Resource<GuestOutport>, packet: WitIp) -> PortResult<()> {
        let port = self.outport(&handle)?;
        // Without a wait, the guest need not give its fiber up.
        let Err(ip) = self.enter()?.try_send(port, packet.into()) else {
            return Ok(Ok(()));
        };
        port_result(self.waiting(move |ctx| ctx.send(port, ip)).await?)
    }

    async fn send_batch(
        &mut self,
        handle: Resource<GuestOutport>,
        packets: Vec<WitIp>,
    ) -> PortResult<()> {
        let port = self.outport(&handle)?;
        self.send_all(port, packets.into_iter().map(Ip::from)).await
    }

    async fn send_packed(
        &mut self,
        handle: Resource<GuestOutport>,
        packets: PackedIps,
    ) -> PortResult<()> {
        let port = self.outport(&handle)?;
        match unpack(packets) {
            Ok(ips) => self.send_all(port, ips.into_iter()).await,
            Err(error) => Ok(Err(error)),
        }
    }

    fn is_connected(&mut self, handle: Resource<GuestOutport>) -> wasmtime::Result<bool> {
        let port = self.outport(&handle)?;
        Ok(self.enter()?.is_outport_connected(port))
    }

    fn drop(&mut self, handle: Resource<GuestOutport>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

impl runtime::Host for HostState {
    fn node_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.enter()?.node().to_string())
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let node = self.enter()?.node().to_string();
        match level {
            LogLevel::Trace => tracing::trace!(node = %node, "{message}"),
            LogLevel::Debug => tracing::debug!(node = %node, "{message}"),
            LogLevel::Info => tracing::info!(node = %node, "{message}"),
            LogLevel::Warn => tracing::warn!(node = %node, "{message}"),
            LogLevel::Error => tracing::error!(node = %node, "{message}"),
        }
        Ok(())
    }

    fn output(&mut self, message: String) -> wasmtime::Result<()> {
        self.enter()?.output(message);
        Ok(())
    }

    fn is_stopping(&mut self) -> wasmtime::Result<bool> {
        Ok(self.enter()?.is_stopping())
    }

    async fn sleep(&mut self, milliseconds: u32) -> wasmtime::Result<bool> {
        let duration = Duration::from_millis(u64::from(milliseconds));
        let slept = self.waiting(move |ctx| ctx.sleep(duration)).await?;
        Ok(slept.is_ok())
    }
}

impl HostState {
    /// Sends `ips` in order: on the fiber while no send waits, the rest off it.
    async fn send_all(
        &mut self,
        port: OutPort,
        mut ips: impl Iterator<Item = Ip> + Send,
    ) -> PortResult<()> {
        let ctx = self.enter()?;
        while let Some(ip) = ips.next() {
            if let Err(ip) = ctx.try_send(port, ip) {
                let rest: Vec<Ip> = std::iter::once(ip).chain(ips).collect();
                return port_result(self.waiting(move |ctx| ctx.send_batch(port, rest)).await?);
            }
        }
        Ok(Ok(()))
    }
}
