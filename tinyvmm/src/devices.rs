//! The guest's devices: the COM1 UART (vm-superio's 16550) wired to raw stdout and to stdin
//! through a reader thread, the status port, the i8042 reset. Input reaches the UART both when
//! the guest polls it and, for a guest that waits for its interrupt, as soon as it arrives.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

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

/// What a Linux guest's console said about how it is going down: the kernel prints these
/// lines at emergency level just before it powers off, restarts or panics, and the i8042 reset
/// or triple fault that follows looks the same for all three.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Saw {
    /// `reboot: Power down`.
    pub power_down: bool,
    /// `reboot: Restarting system`.
    pub restarting: bool,
    /// `Kernel panic - not syncing`.
    pub panic: bool,
}

impl Saw {
    /// Updates from one complete console line (without its newline).
    pub fn line(&mut self, line: &[u8]) {
        // The kernel's "[    1.234567] " timestamp may precede the message.
        let text = match line.iter().position(|&b| b == b']') {
            Some(i) if line.first() == Some(&b'[') => &line[i + 1..],
            _ => line,
        };
        let text = text.trim_ascii_start();
        if text.starts_with(b"reboot: Power down") {
            self.power_down = true;
        } else if text.starts_with(b"reboot: Restarting system") {
            self.restarting = true;
        } else if text.starts_with(b"Kernel panic - not syncing") {
            self.panic = true;
        }
    }
}

/// Guest output, written to fd 1 as it comes: unbuffered and unchanged, so that what the guest
/// printed before a crash or a timeout is out, and a prompt without a newline shows. It also
/// watches the lines go by for [`Saw`].
#[derive(Default)]
pub struct RawStdout {
    line: Vec<u8>,
    saw: Saw,
}

/// Console lines longer than this are only watched for their start.
const WATCHED_LINE: usize = 160;

impl RawStdout {
    fn watch(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.saw.line(line);
                }
                _ if self.line.len() < WATCHED_LINE => self.line.push(b),
                _ => {}
            }
        }
    }
}

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.watch(buf);
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            // SAFETY: writes from a valid slice to fd 1; the kernel does not keep the pointer.
            let n = unsafe { libc::write(1, rest.as_ptr().cast(), rest.len()) };
            if n >= 0 {
                done += n as usize;
                continue;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                // Lost guest output is a write error of tinyvmm's at exit (125), as for
                // util-linux tools, not a silent success.
                conventions::output::stdout_failed(&err);
                return Err(err);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Uart = Serial<Irq, vm_superio::serial::NoEvents, RawStdout>;

/// The UART and the input that did not fit in its FIFO yet.
struct Shared {
    serial: Uart,
    pending: VecDeque<u8>,
}

impl Shared {
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
    /// A UART on stdout whose interrupt line is `irq` (None: no interrupt controller). Stdin is
    /// read from the guest's first read of the UART on, or at once with [`Console::start_input`].
    pub fn new(irq: Option<EventFd>) -> Console {
        Console {
            shared: Arc::new(Mutex::new(Shared {
                serial: Serial::new(Irq(irq), RawStdout::default()),
                pending: VecDeque::new(),
            })),
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A guest write to COM1 + `offset`. Output errors (a closed stdout) are the reader's loss,
    /// not a reason to stop the guest.
    pub fn write(&self, offset: u8, value: u8) {
        let _ = lock(&self.shared).serial.write(offset, value);
    }

    /// A guest read from COM1 + `offset`.
    pub fn read(&self, offset: u8) -> u8 {
        // Receive buffer and line status are where a polling guest looks for input.
        if offset == 0 || offset == 5 {
            self.start_input();
        }
        let mut s = lock(&self.shared);
        s.fill();
        s.serial.read(offset)
    }

    /// What the console said about how the guest is going down.
    pub fn saw(&self) -> Saw {
        lock(&self.shared).serial.writer().saw
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

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(text: &[u8]) -> Saw {
        let mut out = RawStdout::default();
        // Fed in odd pieces, as the UART delivers them byte by byte.
        for chunk in text.chunks(3) {
            out.watch(chunk);
        }
        out.saw
    }

    #[test]
    fn console_lines_that_say_how_linux_goes_down() {
        assert_eq!(watched(b"hello\n"), Saw::default());
        assert!(watched(b"[   12.345678] reboot: Power down\r\n").power_down);
        assert!(watched(b"reboot: Restarting system\n").restarting);
        let p = watched(b"x\n[    1.0] Kernel panic - not syncing: Attempted to kill init!\n");
        assert!(p.panic && !p.power_down);
        // Only whole lines count, and only at their start.
        assert!(!watched(b"reboot: Power down").power_down);
        assert!(!watched(b"echo reboot: Power down\n").power_down);
        let long: Vec<u8> = [&[b'a'; 1000][..], b"\nreboot: Power down\n"].concat();
        assert!(watched(&long).power_down);
    }
}
