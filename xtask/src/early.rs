//! The audit of code that runs before glibc starts (`conventions::prelibc`), on the shipped static
//! build, where a slip crashes only there: a call to glibc's `memset` or `memcpy` jumps through a
//! slot that glibc's start-up has not filled yet, and a TLS access reads through a null `%fs`.
//! The compiler decides where such calls appear, so the binary is checked, not the source.

use std::path::Path;
use std::process::Command;

use conventions::prelibc::SECTION;

/// Checks `binary`: it starts at the early section, and the code there calls and jumps only
/// within it (but for the one jump to glibc's `_start` at the end of the entry stub), makes no
/// indirect call and no `%fs` access.
pub fn audit(binary: &Path) -> Result<(), String> {
    let objdump = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("objdump")
            .args(args)
            .arg(binary)
            .output()
            .map_err(|e| format!("cannot run objdump (Debian package binutils): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "objdump {args:?} {} failed: {}",
                binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let header = objdump(&["-f"])?;
    let disasm = objdump(&["-d", "--no-show-raw-insn", "-j", SECTION])?;
    check(&header, &disasm).map_err(|e| format!("{}: {e}", binary.display()))
}

/// The address in `0x...` or bare hex.
fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// The audit on objdump's output: `header` from `-f`, `disasm` from `-d -j early_text`.
pub fn check(header: &str, disasm: &str) -> Result<(), String> {
    let entry = header
        .lines()
        .find_map(|l| l.strip_prefix("start address "))
        .and_then(hex)
        .ok_or("objdump -f shows no start address")?;
    // Instruction lines: "  34f6b8:\tcall   0x34f6d0" (address, tab, mnemonic and operands).
    let insns: Vec<(u64, &str)> = disasm
        .lines()
        .filter_map(|l| {
            let (addr, rest) = l.split_once(":\t")?;
            Some((hex(addr)?, rest.trim()))
        })
        .collect();
    let (first, last) = match (insns.first(), insns.last()) {
        (Some(f), Some(l)) => (f.0, l.0),
        _ => {
            return Err(format!(
                "no {SECTION} section: the early entry is not linked in"
            ))
        }
    };
    if entry != first {
        return Err(format!(
            "the binary starts at {entry:#x}, not at {SECTION} ({first:#x}): the linker was not given --entry"
        ));
    }
    let mut exits = Vec::new();
    for (addr, text) in &insns {
        let mut words = text.split_whitespace();
        let mnemonic = match words.next() {
            Some("notrack" | "bnd") => words.next().unwrap_or(""),
            Some(m) => m,
            None => continue,
        };
        let operand = words.next().unwrap_or("");
        if text.contains("%fs") {
            return Err(format!(
                "{addr:#x}: `{text}` reads TLS, which is not set up yet"
            ));
        }
        let branch = mnemonic.starts_with('j') || mnemonic.starts_with("call");
        if !branch {
            continue;
        }
        if let Some(target) = operand.strip_prefix('*') {
            // A jump table (`jmp *TABLE(,%reg,8)` or `jmp *%reg`) stays within the function;
            // an indirect call, or a jump through a pointer in memory, goes to a resolved
            // symbol (a PLT slot glibc has not filled).
            let table =
                mnemonic.starts_with('j') && (target.starts_with('%') || target.contains("(,%"));
            if !table {
                return Err(format!(
                    "{addr:#x}: `{text}` leaves {SECTION} through a pointer"
                ));
            }
            continue;
        }
        let Some(to) = hex(operand) else {
            return Err(format!("{addr:#x}: cannot read the target of `{text}`"));
        };
        if !(first..=last).contains(&to) {
            exits.push((*addr, to, text.to_string()));
        }
    }
    // The entry stub is a few instructions long and ends in its jump to _start.
    match &exits[..] {
        [(addr, _, text)] if text.starts_with("jmp") && *addr < first + 32 => Ok(()),
        [] => Err("the entry stub does not hand over to _start".to_string()),
        more => Err(format!(
            "{SECTION} calls or jumps out of itself (only the entry's jump to _start may): {more:x?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "\nx:     file format elf64-x86-64\narchitecture: i386:x86-64, flags 0x00000112:\nEXEC_P, HAS_SYMS, D_PAGED\nstart address 0x000000000034f6b0\n";

    fn disasm(body: &str) -> String {
        format!(
            "\nx:     file format elf64-x86-64\n\nDisassembly of section early_text:\n\n000000000034f6b0 <early_text>:\n  34f6b0:\tmov    %rsp,%rdi\n  34f6b3:\tpush   %rdx\n  34f6b8:\tcall   0x34f6d0\n  34f6c2:\tjmp    0x2516c0\n{body}  34f700:\tret\n"
        )
    }

    #[test]
    fn accepts_self_contained_code() {
        let body = "  34f6d0:\tjmp    *0x206988(,%r9,8)\n  34f6d8:\tnotrack jmp *%rax\n  34f6e0:\tjne    0x34f6b0\n  34f6e8:\tsyscall\n";
        assert_eq!(check(HEADER, &disasm(body)), Ok(()));
    }

    #[test]
    fn refuses_what_needs_glibc_started() {
        for body in [
            "  34f6d0:\tcall   *0x5a49(%rip)        # 0x3564b8\n",
            "  34f6d0:\tcall   0x401000\n",
            "  34f6d0:\tmov    %fs:0x28,%rax\n",
            "  34f6d0:\tjmp    *0x5a49(%rip)\n",
            "  34f6d0:\tje     0x500000\n",
        ] {
            assert!(check(HEADER, &disasm(body)).is_err(), "{body}");
        }
        let elsewhere = HEADER.replace("0x000000000034f6b0", "0x0000000000401000");
        assert!(check(&elsewhere, &disasm("")).is_err());
        assert!(check(HEADER, "").is_err());
    }
}
