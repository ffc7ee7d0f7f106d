//! What the host gives a guest: its ports and the runtime services, over its process context.

use std::time::Duration;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::flowd::component::{ports, runtime, types};
use super::bindings::{
    GuestInport, GuestOutport, LogLevel, PackedIps, PortError, WitIp, WitReceived, pack, unpack,
};
use super::sandbox::{MemoryLimiter, Watchdog};
use crate::engine::{InPort, OutPort, ProcessContext, ProcessError, Received};
use crate::ip::Ip;

/// The data of a guest's store: its process context and its sandbox.
pub(crate) struct HostState {
    pub(crate) ctx: ProcessContext,
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
    fn enter(&mut self) -> &mut ProcessContext {
        self.watchdog.host_calls = self.watchdog.host_calls.wrapping_add(1);
        &mut self.ctx
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
        let ctx = self.enter();
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
        let ctx = self.enter();
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
        let indexes = self.enter().inport_indexes(&name);
        Ok(indexes
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect())
    }

    fn outport_indexes(&mut self, name: String) -> wasmtime::Result<Vec<u32>> {
        let indexes = self.enter().outport_indexes(&name);
        Ok(indexes
            .into_iter()
            .filter_map(|i| u32::try_from(i).ok())
            .collect())
    }

    fn recv_any(
        &mut self,
        handles: Vec<Resource<GuestInport>>,
        timeout_ms: Option<u32>,
    ) -> PortResult<WitReceived> {
        let ports = handles
            .iter()
            .map(|h| self.inport(h))
            .collect::<wasmtime::Result<Vec<InPort>>>()?;
        let ctx = self.enter();
        let received = match timeout_ms {
            Some(ms) => ctx.recv_any_timeout(&ports, Duration::from_millis(u64::from(ms))),
            None => ctx.recv_any(&ports),
        };
        let position = |port: InPort| {
            let at = ports.iter().position(|p| *p == port).unwrap_or(0);
            u32::try_from(at).unwrap_or(u32::MAX)
        };
        port_result(received.map(|r| match r {
            Received::Ip(port, ip) => WitReceived::Ip((position(port), ip.into())),
            Received::Ended(port) => WitReceived::Ended(position(port)),
            Received::AllEnded => WitReceived::AllEnded,
            Received::Timeout => WitReceived::Timeout,
        }))
    }

    fn read_config(&mut self, name: String) -> PortResult<Option<Vec<u8>>> {
        port_result(
            self.enter()
                .read_config(&name)
                .map(|p| p.map(|p| p.to_vec())),
        )
    }

    fn flush(&mut self) -> PortResult<()> {
        port_result(self.enter().flush())
    }
}

impl ports::HostInport for HostState {
    fn recv(&mut self, handle: Resource<GuestInport>) -> PortResult<Option<WitIp>> {
        let port = self.inport(&handle)?;
        port_result(self.enter().recv(port).map(|ip| ip.map(WitIp::from)))
    }

    fn recv_batch(&mut self, handle: Resource<GuestInport>, max: u32) -> PortResult<Vec<WitIp>> {
        let port = self.inport(&handle)?;
        let mut batch = Vec::new();
        let received = self.enter().recv_batch(port, &mut batch, max as usize);
        port_result(received.map(|_| batch.into_iter().map(WitIp::from).collect()))
    }

    fn recv_packed(&mut self, handle: Resource<GuestInport>, max: u32) -> PortResult<PackedIps> {
        let port = self.inport(&handle)?;
        let mut batch = Vec::new();
        let received = self.enter().recv_batch(port, &mut batch, max as usize);
        port_result(received.map(|_| pack(batch)))
    }

    fn try_recv(&mut self, handle: Resource<GuestInport>) -> PortResult<Option<WitIp>> {
        let port = self.inport(&handle)?;
        port_result(self.enter().try_recv(port).map(|ip| ip.map(WitIp::from)))
    }

    fn is_ended(&mut self, handle: Resource<GuestInport>) -> wasmtime::Result<bool> {
        let port = self.inport(&handle)?;
        Ok(self.enter().is_ended(port))
    }

    fn drop(&mut self, handle: Resource<GuestInport>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

impl ports::HostOutport for HostState {
    fn send(&mut self, handle: Resource<GuestOutport>, packet: WitIp) -> PortResult<()> {
        let port = self.outport(&handle)?;
        port_result(self.enter().send(port, packet.into()))
    }

    fn send_batch(
        &mut self,
        handle: Resource<GuestOutport>,
        packets: Vec<WitIp>,
    ) -> PortResult<()> {
        let port = self.outport(&handle)?;
        port_result(
            self.enter()
                .send_batch(port, packets.into_iter().map(Ip::from)),
        )
    }

    fn send_packed(
        &mut self,
        handle: Resource<GuestOutport>,
        packets: PackedIps,
    ) -> PortResult<()> {
        let port = self.outport(&handle)?;
        let ips = match unpack(packets) {
            Ok(ips) => ips,
            Err(error) => return Ok(Err(error)),
        };
        port_result(self.enter().send_batch(port, ips))
    }

    fn is_connected(&mut self, handle: Resource<GuestOutport>) -> wasmtime::Result<bool> {
        let port = self.outport(&handle)?;
        Ok(self.enter().is_outport_connected(port))
    }

    fn drop(&mut self, handle: Resource<GuestOutport>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

impl runtime::Host for HostState {
    fn node_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.enter().node().to_string())
    }

    fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let node = self.enter().node().to_string();
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
        self.enter().output(message);
        Ok(())
    }

    fn is_stopping(&mut self) -> wasmtime::Result<bool> {
        Ok(self.enter().is_stopping())
    }

    fn sleep(&mut self, milliseconds: u32) -> wasmtime::Result<bool> {
        let slept = self
            .enter()
            .sleep(Duration::from_millis(u64::from(milliseconds)));
        Ok(slept.is_ok())
    }
}
