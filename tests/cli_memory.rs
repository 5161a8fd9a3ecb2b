//! `eval` reads JSON lines in chunks: its peak memory stays bounded whatever
//! the size of the input. Measured from outside, as the kernel counts it (the
//! child's peak resident set, `VmHWM`), on inputs far larger than the bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};

/// The bound the CLI promises, in KiB.
const BOUND_KIB: u64 = 64 << 10;

/// Records whose padding makes them about 1 KiB each.
fn line(i: usize, pad: &str) -> String {
    format!(
        "{{\"id\":{i},\"pad\":\"{pad}\",\"total\":{},\"tier\":\"t{}\"}}\n",
        i % 300,
        i % 7
    )
}

/// How many of the first `n` records match `total >= 100 and tier != t3`.
fn expected(n: usize) -> usize {
    (0..n).filter(|i| i % 300 >= 100 && i % 7 != 3).count()
}

const RULE: &str = "total >= 100 and tier != \"t3\"";

/// The peak resident set of a running process, in KiB (`None` once it exited).
fn peak_kib(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rulesaga"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// A 200 MiB file: the peak, sampled until the process ends, stays under the
/// bound (the old reader held the whole file, so its first sample was already over).
#[test]
fn a_file_three_times_the_bound_is_evaluated_in_bounded_memory() {
    let pad = "x".repeat(960);
    let n = 208 * 1024;
    let dir = std::env::temp_dir().join(format!("rulesaga-mem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        file.write_all(line(i, &pad).as_bytes()).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    assert!(std::fs::metadata(&path).unwrap().len() > 3 * (BOUND_KIB << 10));

    let mut child = bin()
        .args(["eval", "-e", RULE, "--count", "--data"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_kib(&child) {
            peak = peak.max(kib);
            samples += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        expected(n).to_string()
    );
    assert!(samples > 0, "the process was never sampled");
    assert!(peak < BOUND_KIB, "peak {peak} KiB");
}

/// Standard input, 128 MiB, with `--filter`: once everything is written the
/// process waits for the end of its input, and its peak so far (everything but
/// the last chunk) is under the bound; every matching line comes out verbatim.
#[test]
fn standard_input_is_filtered_in_bounded_memory() {
    let pad = "y".repeat(960);
    let n = 128 * 1024;
    let mut child = support::cli::spawn_piped(&["eval", "-e", RULE, "--filter", "--data", "-"]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..n {
            stdin.write_all(line(i, &pad).as_bytes()).unwrap();
        }
        stdin.flush().unwrap();
        stdin
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let mut ok = true;
        let pad = "y".repeat(960);
        let mut text = Vec::new();
        loop {
            let k = std::io::Read::read(&mut stdout, &mut buf).unwrap();
            if k == 0 {
                break;
            }
            text.extend_from_slice(&buf[..k]);
            // check and drop whole lines as they come, so the test stays small too
            let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            for l in text[..end].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json::Value = serde_json::from_slice(l).unwrap();
                let i = v["id"].as_u64().unwrap() as usize;
                ok &= format!("{}\n", String::from_utf8_lossy(l)) == line(i, &pad);
                lines += 1;
            }
            text.drain(..end);
        }
        (lines, ok)
    });
    let stdin = writer.join().unwrap();
    let peak = peak_kib(&child).expect("still running, waiting for more input");
    drop(stdin);
    let (lines, verbatim) = reader.join().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(lines, expected(n));
    assert!(verbatim, "a line was not printed as it was read");
    assert!(peak < BOUND_KIB, "peak {peak} KiB");
}
