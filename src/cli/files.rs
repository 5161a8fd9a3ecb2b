//! Finding the files a command works on.

use std::path::{Path, PathBuf};

/// Files under `paths` that `keep` accepts: folders are searched recursively, in
/// sorted order; a file named directly is taken whatever its name, and `-`
/// (standard input) as it is. A path that does not exist is an error.
pub fn find(
    paths: &[PathBuf],
    keep: impl Fn(&Path) -> bool + Copy,
) -> Result<Vec<PathBuf>, String> {
    fn walk(
        dir: &Path,
        keep: impl Fn(&Path) -> bool + Copy,
        out: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, keep, out)?;
            } else if keep(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            // standard input, read by the command
            out.push(path.clone());
        } else if path.is_dir() {
            walk(path, keep, &mut out)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(format!("`{}` does not exist", path.display()));
        }
    }
    out.dedup();
    Ok(out)
}

/// A rule file: `*.rules`.
pub fn is_rule_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rules")
}
