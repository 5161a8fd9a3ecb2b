//! The `rulesaga` binary run as a user runs it, in a fresh folder holding the
//! files a case needs: one harness for the CLI tables.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One run of the binary: files to create, arguments, and what must come out.
pub struct Case {
    /// Files created in the case's folder before the run (name, contents).
    pub files: &'static [(&'static str, &'static str)],
    pub args: &'static [&'static str],
    pub exit: i32,
    /// Texts stdout must contain.
    pub stdout: &'static [&'static str],
    /// Texts stderr must contain.
    pub stderr: &'static [&'static str],
}

/// A fresh empty folder.
pub fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rulesaga-case-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run the binary in `dir`.
pub fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulesaga"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

/// Run every case; report every mismatch at once.
pub fn check_cases(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let dir = temp_dir();
        for (name, text) in case.files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let o = run_in(&dir, case.args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let mut wrong = Vec::new();
        if o.status.code() != Some(case.exit) {
            wrong.push(format!(
                "exit {:?}, expected {}",
                o.status.code(),
                case.exit
            ));
        }
        wrong.extend(
            case.stdout
                .iter()
                .filter(|s| !out.contains(**s))
                .map(|s| format!("stdout lacks {s:?}")),
        );
        wrong.extend(
            case.stderr
                .iter()
                .filter(|s| !err.contains(**s))
                .map(|s| format!("stderr lacks {s:?}")),
        );
        if !wrong.is_empty() {
            failures.push(format!(
                "rulesaga {}\n  {}\n--- stdout\n{out}--- stderr\n{err}",
                case.args.join(" "),
                wrong.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Start the binary (in the checkout) with standard input, output and error
/// piped, for tests that stream through it.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    Command::new(env!("CARGO_BIN_EXE_rulesaga"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
