//! The guest's devices: the COM1 UART (vm-superio's 16550) wired to raw stdout (stderr in the
//! one-shot mode) and to stdin through a reader thread, the status port, the i8042 reset. Input
//! reaches the UART both when the guest polls it and, for a guest that waits for its interrupt,
//! as soon as it arrives.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::coalesced::TxRing;

/// COM1's base port.
pub const COM1: u16 = 0x3f8;
/// COM1's interrupt line (GSI), used when there is an interrupt controller.
pub const COM1_IRQ: u32 = 4;
/// The status port: a byte written here ends the run and becomes the exit status.
pub const STATUS_PORT: u16 = 0xf4;
/// The i8042 command port; 0xfe written here pulses the reset line.
pub const I8042_CMD: u16 = 0x64;
/// The i8042 reset command.
pub const I8042_RESET: u8 = 0xfe;

/// The UART's interrupt line: an eventfd that KVM turns into IRQ 4 (KVM_IRQFD) when the VM has
/// an interrupt controller; without one there is no line at all (None) and guests poll.
pub struct Irq(Option<EventFd>);

impl Trigger for Irq {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        match &self.0 {
            Some(fd) => fd.write(1),
            None => Ok(()),
        }
    }
}

/// Guest output, written to a descriptor of tinyvmm's (1, stdout; 2 for the serial console in
/// the one-shot mode) as it comes: unbuffered and unchanged, so that what the guest printed
/// before a crash or a timeout is out, and a prompt without a newline shows.
#[derive(Debug, Clone, Copy)]
pub struct RawOut(pub i32);

impl Default for RawOut {
    fn default() -> RawOut {
        RawOut(1)
    }
}

impl Write for RawOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            // SAFETY: writes from a valid slice to a descriptor this process holds open (or
            // fails with EBADF); the kernel does not keep the pointer.
            let n = unsafe { libc::write(self.0, rest.as_ptr().cast(), rest.len()) };
            if n >= 0 {
                done += n as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                // Lost guest output on stdout is a write error of tinyvmm's at exit (125), as
                // for util-linux tools, not a silent success; stderr has no one to tell.
                if self.0 == 1 {
                    conventions::output::stdout_failed(&err);
                }
                return Err(err);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Uart = Serial<Irq, vm_superio::serial::NoEvents, RawOut>;

/// The UART, the input that did not fit in its FIFO yet, and the transmitter writes KVM queued.
struct Shared {
    serial: Uart,
    pending: VecDeque<u8>,
    tx: Option<TxRing>,
}

impl Shared {
    /// Hands the queued transmitter writes to the UART, so that whatever the guest does next
    /// finds it as if each had exited.
    fn catch_up(&mut self) {
        let Shared { serial, tx, .. } = self;
        if let Some(ring) = tx {
            ring.drain(|b| {
                let _ = serial.write(0, b);
            });
        }
    }

    /// Moves pending input into the FIFO as far as it has room (raising the data-ready interrupt).
    fn fill(&mut self) {
        let room = self.serial.fifo_capacity().min(self.pending.len());
        if room > 0 {
            let bytes: Vec<u8> = self.pending.drain(..room).collect();
            let _ = self.serial.enqueue_raw_bytes(&bytes);
        }
    }
}

/// Where guest output goes and guest input comes from; clones share the one UART (one per
/// vCPU thread).
#[derive(Clone)]
pub struct Console {
    shared: Arc<Mutex<Shared>>,
    started: Arc<AtomicBool>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere cannot leave the UART half-updated in a way that matters more than
    // losing the guest's console, so a poisoned lock is used as is.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Console {
    /// A UART writing to `out` whose interrupt line is `irq` (None: no interrupt controller).
    /// Stdin is read from the guest's first read of the UART on, or at once with
    /// [`Console::start_input`].
    pub fn new(irq: Option<EventFd>, out: RawOut) -> Console {
        Console {
            shared: Arc::new(Mutex::new(Shared {
                serial: Serial::new(Irq(irq), out),
                pending: VecDeque::new(),
                tx: None,
            })),
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on the guest's transmitter writes that KVM queues in `ring` are this UART's,
    /// taken out before each access and by [`Console::catch_up`].
    pub fn queue_tx(&self, ring: TxRing) {
        lock(&self.shared).tx = Some(ring);
    }

    /// Writes out what the guest queued for the transmitter (at the run's end).
    pub fn catch_up(&self) {
        lock(&self.shared).catch_up();
    }

    /// A guest write to COM1 + `offset`. Output errors (a closed stdout) are the reader's loss,
    /// not a reason to stop the guest.
    pub fn write(&self, offset: u8, value: u8) {
        let mut s = lock(&self.shared);
        s.catch_up();
        let _ = s.serial.write(offset, value);
    }

    /// A guest read from COM1 + `offset`.
    pub fn read(&self, offset: u8) -> u8 {
        // Receive buffer and line status are where a polling guest looks for input.
        if offset == 0 || offset == 5 {
            self.start_input();
        }
        let mut s = lock(&self.shared);
        s.catch_up();
        s.fill();
        s.serial.read(offset)
    }

    /// Starts the stdin reader thread (once). Without a thread (spawn failed) the guest sees no
    /// input.
    pub fn start_input(&self) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        // The thread blocks in read(2) and dies with the process.
        let _ = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let mut stdin = io::stdin();
                let mut buf = [0u8; 4096];
                loop {
                    // Read no further ahead of the guest than this.
                    while lock(&shared).pending.len() >= 1 << 16 {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    match stdin.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            let mut s = lock(&shared);
                            s.pending.extend(&buf[..n]);
                            s.fill();
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            });
    }
}
