//! What the CLI says about itself: the examples at the end of every
//! subcommand's `--help`, `rulesaga completions SHELL` and `rulesaga man`.
//!
//! The examples are kept here, by subcommand path, rather than on each
//! variant, so that a command tree built from many files gets them in one
//! place; a test requires two or three for every subcommand, so a new
//! subcommand needs its examples here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::ErrorFormat;
use super::render;

/// Two or three examples per subcommand (`saga run` for a nested one).
pub const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "check",
        &[
            "rulesaga check specs/discount.rules",
            "rulesaga check --deny-warnings specs/",
            "rulesaga check specs/ --output json --error-format json",
        ],
    ),
    (
        "parse",
        &[
            "rulesaga parse specs/discount.rules",
            "rulesaga parse -e 'not tier == premium' --format yaml",
        ],
    ),
    (
        "eval",
        &[
            "rulesaga eval --rules specs/discount.rules --rule discount --data specs/customers.json --explain",
            "rulesaga eval -e 'total > 40' specs/customers.json --output jsonl",
            "tail -f orders.jsonl | rulesaga eval -e 'total > 1000' --filter",
        ],
    ),
    (
        "diff",
        &[
            "rulesaga diff old.rules specs/discount.rules --rule discount --data specs/customers.json",
            "rulesaga diff old_specs/ specs/ --rule discount --data customers.jsonl --key id --output jsonl",
        ],
    ),
    (
        "fmt",
        &[
            "rulesaga fmt specs/",
            "rulesaga fmt --check specs/",
            "cat specs/discount.rules | rulesaga fmt -",
        ],
    ),
    (
        "test",
        &[
            "rulesaga test",
            "rulesaga test specs/discount.test.yaml",
            "rulesaga test --output junit > junit.xml",
        ],
    ),
    (
        "saga",
        &[
            "rulesaga saga validate sagas/place_order.yaml",
            "rulesaga saga run sagas/place_order.yaml --input @sagas/inputs/order_ok.json --seed sagas/store.json",
            "rulesaga saga list --status failed",
        ],
    ),
    (
        "saga validate",
        &[
            "rulesaga saga validate sagas/place_order.yaml",
            "rulesaga saga validate sagas/apply_discount.yaml --rules specs/discount.rules",
            "cat sagas/place_order.yaml | rulesaga saga validate - --error-format json",
        ],
    ),
    (
        "saga run",
        &[
            "rulesaga saga run sagas/place_order.yaml --input @sagas/inputs/order_ok.json --db demo.db --seed sagas/store.json",
            "rulesaga saga run sagas/place_order.yaml --inputs sagas/inputs/orders.jsonl --concurrency 8 --output jsonl",
            "rulesaga saga run sagas/place_order.yaml --input '{\"order_id\": \"o1\"}' --store store.json --fail charge_payment",
        ],
    ),
    (
        "saga resume",
        &[
            "rulesaga saga resume 01a2334e --db demo.db",
            "rulesaga saga resume order-123 --output json",
        ],
    ),
    (
        "saga recover",
        &[
            "rulesaga saga recover --db demo.db",
            "rulesaga saga recover --concurrency 32 --lease-ttl 1m",
        ],
    ),
    (
        "saga retry",
        &[
            "rulesaga saga retry 01a2334e --db demo.db",
            "rulesaga saga retry order-123 --reason 'payments are back'",
        ],
    ),
    (
        "saga skip",
        &[
            "rulesaga saga skip 01a2334e confirm_order --reason 'confirmed by phone'",
            "rulesaga saga skip order-123 charge_payment --reason 'paid by bank transfer' --db demo.db",
        ],
    ),
    (
        "saga mark-compensated",
        &[
            "rulesaga saga mark-compensated 01a2334e charge_payment --reason 'refunded by hand'",
            "rulesaga saga mark-compensated order-123 reserve_inventory --reason 'released by hand' --db demo.db",
        ],
    ),
    (
        "saga list",
        &[
            "rulesaga saga list --db demo.db",
            "rulesaga saga list --status failed --since 1d",
            "rulesaga saga list --name place_order --limit 10 --output jsonl",
        ],
    ),
    (
        "saga status",
        &[
            "rulesaga saga status 01a2334e --db demo.db",
            "rulesaga saga status order-123 --output json",
        ],
    ),
    (
        "saga history",
        &[
            "rulesaga saga history 01a2334e --db demo.db",
            "rulesaga saga history order-123 --output jsonl",
        ],
    ),
    (
        "saga seed",
        &[
            "rulesaga saga seed sagas/store.json --db demo.db",
            "rulesaga saga seed store.json --db sqlite:/var/lib/app/sagas.db",
        ],
    ),
    (
        "saga export",
        &[
            "rulesaga saga export --db demo.db",
            "rulesaga saga export --db demo.db > store.json",
        ],
    ),
    (
        "saga rebuild-projection",
        &[
            "rulesaga saga rebuild-projection --db demo.db",
            "rulesaga saga rebuild-projection --db sqlite:/var/lib/app/sagas.db",
        ],
    ),
    (
        "saga graph",
        &[
            "rulesaga saga graph sagas/place_order.yaml",
            "rulesaga saga graph sagas/place_order.yaml --format dot | dot -Tsvg > saga.svg",
        ],
    ),
    (
        "serve",
        &[
            "rulesaga serve --db /tmp/serve.db --rules specs/ --sagas sagas/",
            "rulesaga serve --rules specs/ --listen 0.0.0.0:8080 --token-file /etc/rulesaga/token",
            "rulesaga serve --db /tmp/serve.db --sagas sagas/ --concurrency 128 --watch",
        ],
    ),
    (
        "completions",
        &[
            "rulesaga completions bash > ~/.local/share/bash-completion/completions/rulesaga",
            "rulesaga completions zsh > ~/.zfunc/_rulesaga",
            "rulesaga completions fish > ~/.config/fish/completions/rulesaga.fish",
        ],
    ),
    (
        "man",
        &[
            "rulesaga man | man -l -",
            "rulesaga man --dir /usr/local/share/man/man1",
        ],
    ),
];

/// The examples of a subcommand as `--help` ends with them.
fn examples_text(examples: &[&str]) -> String {
    let mut text = String::from("Examples:");
    for e in examples {
        text.push_str("\n  ");
        text.push_str(e);
    }
    text
}

/// `cmd` with the examples of each subcommand (found by its path) as its `after_help`.
pub fn with_examples(cmd: clap::Command) -> clap::Command {
    attach(cmd, "")
}

fn attach(mut cmd: clap::Command, path: &str) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let full = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match EXAMPLES.iter().find(|(p, _)| *p == full) {
                Some((_, examples)) => sub.after_help(examples_text(examples)),
                None => sub,
            };
            attach(sub, &full)
        });
    }
    cmd
}

/// `rulesaga completions`
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// `rulesaga man`
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write one page per command (`rulesaga.1`, `rulesaga-eval.1`, ...) into
    /// this folder instead of printing the page of `rulesaga`.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `rulesaga completions SHELL`: the completion script on standard output.
pub fn completions(args: &CompletionsArgs) -> ExitCode {
    let mut cmd = super::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rulesaga", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

/// `rulesaga man`: the man page (roff) on standard output, or every page into `--dir`.
pub fn man(args: &ManArgs, format: ErrorFormat) -> ExitCode {
    let cmd = super::command();
    let written = match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .map_err(|e| format!("cannot write man pages into `{}`: {e}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map(|()| out!("{}", String::from_utf8_lossy(&page)))
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err!("{}", render::plain_error(&e, format));
            ExitCode::from(super::rules::EXIT_DATA)
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    /// Every entry names a subcommand that exists (no examples left behind by a rename).
    #[test]
    fn every_example_entry_names_a_subcommand() {
        let root = super::super::command();
        for (path, _) in EXAMPLES {
            let mut cmd = &root;
            for name in path.split(' ') {
                cmd = cmd
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("no subcommand `{path}`"));
            }
        }
    }
}
