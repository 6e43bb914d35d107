//! The devices at run time: each transport behind a lock that vCPU threads take for register
//! accesses, KVM's ioeventfd turning a queue notification into an eventfd signal instead of a
//! vCPU exit, and one device thread that waits on those (epoll) and serves the queues, then
//! raises the device's interrupt through an irqfd (kernels; an image guest has no interrupt
//! controller and polls). Where KVM refuses an ioeventfd the notification exits as any MMIO
//! write and is served on the vCPU thread. The same thread watches each device's input (a
//! network device's tap) with a one-shot epoll registration, armed again after each serve of
//! that device unless the device holds a frame the guest has no buffer for yet: then the
//! guest's next notification of the queue serves it and arms the watch.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use kvm_ioctls::{IoEventAddress, VmFd};
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_MMIO_STATUS};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::mmio::{Transport, Write};
use super::{mmio_addr, Device, IRQS, MMIO_STRIDE};
use crate::Error;

struct Slot {
    base: u64,
    transport: Mutex<Transport>,
    /// KVM_IRQFD on the device's line, when the VM has an interrupt controller.
    irq: Option<EventFd>,
    /// KVM_IOEVENTFD on each queue's notification, when KVM took it.
    notify: Vec<Option<EventFd>>,
    /// The device's input descriptor and the queue it feeds ([`Device::input`]).
    input: Option<(i32, usize)>,
}

/// The epoll data of the stop eventfd.
const STOP: u64 = u64::MAX;
/// The low half of an epoll datum naming a device's input rather than a queue.
const INPUT: u64 = 0xffff_ffff;

fn datum(slot: usize, what: u64) -> u64 {
    (slot as u64) << 32 | what
}

/// Every device of a VM, by MMIO address.
pub struct Bus {
    slots: Vec<Slot>,
    mem: GuestMemoryMmap,
    /// The tool's name, for the line saying a device needs a reset.
    tool: String,
    /// What the device thread waits on: the notifications and the inputs.
    epoll: Epoll,
}

fn lock(m: &Mutex<Transport>) -> MutexGuard<'_, Transport> {
    // A poisoned transport is used as is: its state is plain registers.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn eventfd(what: &'static str) -> Result<EventFd, Error> {
    EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
        .map_err(|source| Error::Setup { what, source })
}

impl Bus {
    /// The devices in order (device n at [`mmio_addr`]`(n)` on line [`IRQS`]`[n]`), reading and
    /// writing `mem`. With `vm`, each gets its irqfd (if `irqchip`) and its ioeventfd.
    pub fn new(
        devices: Vec<Box<dyn Device>>,
        mem: GuestMemoryMmap,
        vm: Option<&VmFd>,
        irqchip: bool,
        tool: &str,
    ) -> Result<Bus, Error> {
        let mut slots = Vec::new();
        for (n, dev) in devices.into_iter().enumerate() {
            let base = mmio_addr(n);
            let mut irq = None;
            let mut notify = Vec::new();
            if let Some(vm) = vm {
                if irqchip {
                    let fd = eventfd("eventfd for a virtio interrupt")?;
                    vm.register_irqfd(&fd, IRQS[n])
                        .map_err(Error::ioctl("KVM_IRQFD"))?;
                    irq = Some(fd);
                }
                for q in 0..dev.queues() {
                    let fd = eventfd("eventfd for a virtio queue")?;
                    let at = IoEventAddress::Mmio(base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY));
                    // The queue's number as the data to match; a refusal leaves the
                    // notification to exit.
                    let ok = vm.register_ioevent(&fd, &at, q as u32).is_ok();
                    notify.push(ok.then_some(fd));
                }
            }
            let input = dev.input();
            slots.push(Slot {
                base,
                transport: Mutex::new(Transport::new(dev)),
                irq,
                notify,
                input,
            });
        }
        let epoll = Epoll::new().map_err(|source| Error::Setup {
            what: "epoll_create",
            source,
        })?;
        Ok(Bus {
            slots,
            mem,
            tool: tool.to_string(),
            epoll,
        })
    }

    fn watch(
        &self,
        op: ControlOperation,
        fd: i32,
        events: EventSet,
        data: u64,
    ) -> Result<(), Error> {
        self.epoll
            .ctl(op, fd, EpollEvent::new(events, data))
            .map_err(|source| Error::Setup {
                what: "epoll_ctl",
                source,
            })
    }

    /// Arms the one-shot watch of slot `n`'s input again, if it has one and wants it.
    fn rearm(&self, n: usize) {
        let Some(s) = self.slots.get(n) else { return };
        if let Some((fd, _)) = s.input {
            if lock(&s.transport).wants_input() {
                // A failure (not reached: the descriptor is registered) leaves the input
                // unwatched; the guest's next notification of the queue tries again.
                let _ = self.watch(
                    ControlOperation::Modify,
                    fd,
                    EventSet::IN | EventSet::ONE_SHOT,
                    datum(n, INPUT),
                );
            }
        }
    }

    fn slot(&self, addr: u64) -> Option<(usize, &Slot, u64)> {
        let first = super::MMIO_BASE;
        if addr < first {
            return None;
        }
        let n = ((addr - first) / MMIO_STRIDE) as usize;
        self.slots.get(n).map(|s| (n, s, addr - s.base))
    }

    /// A vCPU's MMIO read; false when `addr` is no device's.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.slot(addr) {
            Some((_, s, off)) => {
                lock(&s.transport).read(off, data);
                true
            }
            None => false,
        }
    }

    /// A vCPU's MMIO write; false when `addr` is no device's. A notification is served here,
    /// on the vCPU thread (KVM had no ioeventfd for it).
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.slot(addr) {
            Some((n, s, off)) => {
                let w = lock(&s.transport).write(off, data);
                if let Write::Notify(q) = w {
                    self.serve(n, q);
                }
                if off == u64::from(VIRTIO_MMIO_STATUS) {
                    // A driver that just started the device hands an external one's queues
                    // to its backend.
                    let irq = {
                        let mut t = lock(&s.transport);
                        let irq = t.activate(&self.mem);
                        if irq {
                            self.said_fault(&t, s.base);
                        }
                        irq
                    };
                    if irq {
                        raise(s);
                    }
                    // A driver that just started (or reset) the device may want its input
                    // watched.
                    self.rearm(n);
                }
                true
            }
            None => false,
        }
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Serves queue `queue` of device `n` while it has requests, then arms its input's watch.
    fn serve(&self, n: usize, queue: usize) {
        if let Some(s) = self.slots.get(n) {
            self.serve_queue(s, queue);
            self.rearm(n);
        }
    }

    /// Says why the device at `base` needs a reset. The guest goes on; its driver sees
    /// NEEDS_RESET.
    fn said_fault(&self, t: &Transport, base: u64) {
        if let Some(f) = t.fault() {
            conventions::errln!(
                "{}: virtio device at 0x{:x} needs a reset: {f}",
                self.tool,
                base
            );
        }
    }

    fn serve_queue(&self, s: &Slot, queue: usize) {
        loop {
            let (irq, more) = {
                let mut t = lock(&s.transport);
                let was = t.fault().is_some();
                let r = t.process(queue, &self.mem);
                if !was {
                    // Said once per fault.
                    self.said_fault(&t, s.base);
                }
                r
            };
            if irq {
                raise(s);
            }
            if !more {
                return;
            }
        }
    }

    /// Device `n`'s input became readable: an external device's backend signalled (raise the
    /// interrupt), or another device's queue may be served.
    fn input(&self, n: usize) {
        let Some(s) = self.slots.get(n) else { return };
        let external = {
            let mut t = lock(&s.transport);
            if t.external() {
                if t.signalled() {
                    drop(t);
                    raise(s);
                }
                true
            } else {
                false
            }
        };
        if external {
            self.rearm(n);
        } else if let Some((_, q)) = s.input {
            self.serve(n, q);
        }
    }

    /// The device status of device `n` (for tests and the verbose log).
    pub fn status(&self, n: usize) -> Option<u32> {
        self.slots.get(n).map(|s| lock(&s.transport).status())
    }

    /// Whether any device's notifications go through an ioeventfd, or a device has an input
    /// to watch (then [`start`] is needed).
    pub fn needs_thread(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.input.is_some() || s.notify.iter().any(Option::is_some))
    }

    /// Why each device that needs a reset does, as (address, reason).
    pub fn faults(&self) -> Vec<(u64, String)> {
        self.slots
            .iter()
            .filter_map(|s| lock(&s.transport).fault().map(|f| (s.base, f.to_string())))
            .collect()
    }
}

/// Raises the device's interrupt line (none without an interrupt controller).
fn raise(s: &Slot) {
    if let Some(fd) = &s.irq {
        // A full eventfd counter still raises the line.
        let _ = fd.write(1);
    }
}

/// The device thread; dropping it stops and joins it.
pub struct Worker {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the device thread serving the queues whose notifications arrive on ioeventfds and
/// the devices' inputs.
pub fn start(bus: Arc<Bus>) -> Result<Worker, Error> {
    let stop = eventfd("eventfd for the device thread")?;
    bus.watch(ControlOperation::Add, stop.as_raw_fd(), EventSet::IN, STOP)?;
    let mut watched = 1;
    for (n, s) in bus.slots.iter().enumerate() {
        for (q, fd) in s.notify.iter().enumerate() {
            if let Some(fd) = fd {
                bus.watch(
                    ControlOperation::Add,
                    fd.as_raw_fd(),
                    EventSet::IN,
                    datum(n, q as u64),
                )?;
                watched += 1;
            }
        }
        if let Some((fd, _)) = s.input {
            bus.watch(
                ControlOperation::Add,
                fd,
                EventSet::IN | EventSet::ONE_SHOT,
                datum(n, INPUT),
            )?;
            watched += 1;
        }
    }
    let stop_fd = stop.try_clone().map_err(|source| Error::Setup {
        what: "dup of an eventfd",
        source,
    })?;
    let thread = std::thread::Builder::new()
        .name("virtio".into())
        .spawn(move || {
            let _keep = stop_fd;
            let mut events = vec![EpollEvent::default(); watched];
            loop {
                let n = match bus.epoll.wait(-1, &mut events) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                for ev in &events[..n] {
                    if ev.data() == STOP {
                        return;
                    }
                    let (slot, what) = ((ev.data() >> 32) as usize, ev.data() & 0xffff_ffff);
                    let Some(s) = bus.slots.get(slot) else {
                        return;
                    };
                    if what == INPUT {
                        bus.input(slot);
                        continue;
                    }
                    if let Some(Some(fd)) = s.notify.get(what as usize) {
                        let _ = fd.read();
                    }
                    bus.serve(slot, what as usize);
                }
            }
        })
        .map_err(|source| Error::Setup {
            what: "spawning the device thread",
            source,
        })?;
    Ok(Worker {
        stop,
        thread: Some(thread),
    })
}
