//! The guest's devices: the COM1 UART (vm-superio's 16550) wired to raw stdout and, through a
//! reader thread started on the guest's first read, to stdin; the status port; the i8042 reset.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// COM1's base port.
pub const COM1: u16 = 0x3f8;
/// The status port: a byte written here ends the run and becomes the exit status.
pub const STATUS_PORT: u16 = 0xf4;
/// The i8042 command port; 0xfe written here pulses the reset line.
pub const I8042_CMD: u16 = 0x64;
/// The i8042 reset command.
pub const I8042_RESET: u8 = 0xfe;

/// The UART's interrupt line. tinyvmm has no interrupt controller (a halt must end the run), so
/// guests poll; the eventfd only satisfies vm-superio's interface.
pub struct Irq(EventFd);

impl Trigger for Irq {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// Guest output, written to fd 1 as it comes: unbuffered and unchanged, so that what the guest
/// printed before a crash or a timeout is out, and a prompt without a newline shows.
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: writes from a valid slice to fd 1; the kernel does not keep the pointer.
            let n = unsafe { libc::write(1, buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where guest output goes and guest input comes from.
pub struct Console {
    serial: Serial<Irq, vm_superio::serial::NoEvents, RawStdout>,
    input: Option<Receiver<Vec<u8>>>,
    pending: VecDeque<u8>,
    started: bool,
}

impl Console {
    /// A UART on stdout; stdin is read only once the guest reads the UART.
    pub fn new() -> io::Result<Console> {
        let irq = Irq(EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)?);
        Ok(Console {
            serial: Serial::new(irq, RawStdout),
            input: None,
            pending: VecDeque::new(),
            started: false,
        })
    }

    /// A guest write to COM1 + `offset`. Output errors (a closed stdout) are the reader's loss,
    /// not a reason to stop the guest.
    pub fn write(&mut self, offset: u8, value: u8) {
        let _ = self.serial.write(offset, value);
    }

    /// A guest read from COM1 + `offset`.
    pub fn read(&mut self, offset: u8) -> u8 {
        // Receive buffer and line status are where a guest looks for input.
        if offset == 0 || offset == 5 {
            self.pump();
        }
        self.serial.read(offset)
    }

    fn pump(&mut self) {
        if !self.started {
            self.started = true;
            self.input = spawn_stdin_reader();
        }
        if let Some(rx) = &self.input {
            loop {
                match rx.try_recv() {
                    Ok(chunk) => self.pending.extend(chunk),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.input = None;
                        break;
                    }
                }
            }
        }
        let room = self.serial.fifo_capacity().min(self.pending.len());
        if room > 0 {
            let bytes: Vec<u8> = self.pending.drain(..room).collect();
            let _ = self.serial.enqueue_raw_bytes(&bytes);
        }
    }
}

/// Reads stdin in a thread (a blocking read must never stall the vCPU) and hands chunks over;
/// the channel closes at end of input. Without a thread (spawn failed) the guest sees no input.
fn spawn_stdin_reader() -> Option<Receiver<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        })
        .ok()
        .map(|_| rx)
}
