//! The saga CLI as a real process, on a temporary copy of `sagas/` (the repository's
//! files are never modified).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_rulesaga");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A temporary directory holding a copy of `sagas/` and `specs/`.
struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = std::env::temp_dir().join(format!("rulesaga-cli-{}", uuid::Uuid::new_v4()));
        copy_dir(&Path::new(ROOT).join("sagas"), &dir.join("sagas"));
        copy_dir(&Path::new(ROOT).join("specs"), &dir.join("specs"));
        Sandbox { dir }
    }
    /// Run the binary. `saga run` without `--db` or `--store` gets the JSON store next
    /// to the saga file (`--store DIR/store.json`) when there is one, as these tests
    /// check the runner's semantics on the JSON store; the database has its own tests.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if args.len() > 2
            && args[0] == "saga"
            && args[1] == "run"
            && !args.iter().any(|a| a == "--db" || a == "--store")
        {
            let store = Path::new(&args[2]).parent().unwrap().join("store.json");
            if self.dir.join(&store).exists() {
                args.push("--store".into());
                args.push(store.display().to_string());
            }
        }
        let out = Command::new(BIN)
            .args(&args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn run_json(&self, args: &[&str]) -> (i32, Json) {
        let (code, stdout, stderr) = self.run(args);
        let json =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, json)
    }
    fn store(&self) -> Json {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("sagas/store.json")).unwrap())
            .unwrap()
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn step_status(out: &Json, name: &str) -> String {
    out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["status"].as_str().unwrap().to_string())
        .unwrap()
}

/// `(type, step)` of every compensation event, in order.
fn compensations(out: &Json) -> Vec<String> {
    out["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "step_compensated")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn place_order_completes_and_updates_the_store() {
    let sb = Sandbox::new();
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["status"], "completed");
    assert!(out["saga_id"].is_string());
    for s in [
        "create_order",
        "reserve_inventory",
        "charge_payment",
        "confirm_order",
    ] {
        assert_eq!(step_status(&out, s), "completed");
    }
    let store = sb.store();
    assert_eq!(store["orders"]["order-123"]["status"], "confirmed");
    assert_eq!(store["inventory"]["item1"]["qty"], 8);
    assert_eq!(store["accounts"]["alice"]["balance"], 900.01);
}

#[test]
fn an_out_of_stock_item_fails_the_reservation_and_cancels_the_order() {
    let sb = Sandbox::new();
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_out_of_stock.json",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["status"], "compensated");
    assert_eq!(out["failed_step"], "reserve_inventory");
    assert_eq!(step_status(&out, "create_order"), "compensated");
    assert_eq!(step_status(&out, "reserve_inventory"), "failed");
    assert_eq!(step_status(&out, "charge_payment"), "not_started");
    let store = sb.store();
    assert_eq!(store["orders"]["order-456"]["status"], "cancelled");
    assert_eq!(store["inventory"]["item3"]["qty"], 0);
    assert_eq!(store["accounts"]["alice"]["balance"], 1000);
}

#[test]
fn failure_at_the_last_compensable_step_undoes_the_others_in_reverse() {
    let sb = Sandbox::new();
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--output",
        "json",
        "--fail",
        "confirm_order",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["status"], "compensated");
    assert_eq!(
        compensations(&out),
        ["charge_payment", "reserve_inventory", "create_order"]
    );
    let store = sb.store();
    assert_eq!(store["inventory"]["item1"]["qty"], 10);
    assert_eq!(store["accounts"]["alice"]["balance"], 1000.0);
    assert_eq!(store["orders"]["order-123"]["status"], "cancelled");
}

#[test]
fn failure_at_the_first_step_compensates_nothing() {
    let sb = Sandbox::new();
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--output",
        "json",
        "--fail",
        "create_order",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["status"], "compensated");
    assert!(compensations(&out).is_empty());
    assert!(sb.store()["orders"].as_object().unwrap().is_empty());
}

#[test]
fn a_compensation_that_fails_once_then_succeeds_changes_state_once() {
    let sb = Sandbox::new();
    let (_, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--output",
        "json",
        "--fail",
        "charge_payment",
        "--fail-compensation",
        "reserve_inventory:1",
    ]);
    assert_eq!(out["status"], "compensated");
    assert_eq!(compensations(&out), ["reserve_inventory", "create_order"]);
    // released exactly once: back to 10, not 12
    assert_eq!(sb.store()["inventory"]["item1"]["qty"], 10);
}

#[test]
fn a_compensation_that_fails_for_good_ends_failed_naming_the_step() {
    let sb = Sandbox::new();
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--output",
        "json",
        "--fail",
        "charge_payment",
        "--fail-compensation",
        "reserve_inventory",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["status"], "failed");
    assert_eq!(out["failed_step"], "reserve_inventory");
    assert_eq!(
        step_status(&out, "reserve_inventory"),
        "compensation_failed"
    );
    assert!(
        out["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "saga_compensated")
    );
}

#[test]
fn skipped_steps_are_not_compensated_and_require_guards_with_a_rule() {
    let sb = Sandbox::new();
    let rules = "specs/discount.rules";
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/apply_discount.yaml",
        "--rules",
        rules,
        "--input",
        r#"{"order_id": "o1", "name": "Pat", "tier": "premium", "total": 20, "days": 99}"#,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(step_status(&out, "notify_vip"), "skipped");
    // the guard refuses a standard customer, with the rule's explanation
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/apply_discount.yaml",
        "--rules",
        rules,
        "--input",
        "@sagas/inputs/discount_standard.json",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    let reason = out["reason"].as_str().unwrap();
    assert!(reason.contains("rule `discount` does not hold"), "{reason}");
    assert!(reason.contains("tier"), "{reason}");
    // a vip fails at the last step: the skipped-or-not step has no compensation, the grant is undone
    let (_, out) = sb.run_json(&[
        "saga",
        "run",
        "sagas/apply_discount.yaml",
        "--rules",
        rules,
        "--input",
        "@sagas/inputs/discount_vip.json",
        "--output",
        "json",
        "--fail",
        "notify_vip",
    ]);
    assert_eq!(out["status"], "compensated");
    assert_eq!(compensations(&out), ["grant_discount"]);
    assert!(sb.store()["discounts"].get("order-900").is_none());
}

#[test]
fn a_hung_action_hits_its_timeout_and_is_compensated() {
    let sb = Sandbox::new();
    sb.write(
        "hang.yaml",
        "saga: hang\nsteps:\n  - name: slow\n    timeout: 50ms\n    action: {handler: sleep, args: {ms: 600000}}\n    compensate: {handler: echo}\n",
    );
    let (code, out) = sb.run_json(&[
        "saga",
        "run",
        "hang.yaml",
        "--input",
        "{}",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1);
    assert_eq!(out["steps"][0]["timed_out"], true);
    assert_eq!(step_status(&out, "slow"), "compensated");
}

#[test]
fn the_live_view_tells_the_story() {
    let sb = Sandbox::new();
    let (code, stdout, _) = sb.run(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_out_of_stock.json",
    ]);
    assert_eq!(code, 1);
    assert!(stdout.contains("FAILED reserve_inventory"), "{stdout}");
    assert!(stdout.contains("ok create_order compensated"), "{stdout}");
    assert!(stdout.trim_end().ends_with("saga compensated"), "{stdout}");
}

#[test]
fn validate_reports_every_error_with_position_and_path() {
    let sb = Sandbox::new();
    let (code, stdout, _) = sb.run(&[
        "saga",
        "validate",
        "sagas/place_order.yaml",
        "sagas/apply_discount.yaml",
        "--rules",
        "specs/discount.rules",
    ]);
    assert_eq!(code, 0, "{stdout}");
    sb.write(
        "bad.yaml",
        "saga: bad\nsteps:\n  - name: a\n    action: {handler: ecko}\n    compensation: none\n  - name: b\n    retry: {max_attempts: 0}\n    action: {noop: true}\n",
    );
    let (code, _, stderr) = sb.run(&["saga", "validate", "bad.yaml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("bad.yaml:4:23: at `steps[0].action.handler`: unknown handler `ecko`"),
        "{stderr}"
    );
    assert!(stderr.contains("S011"), "{stderr}");
    assert!(stderr.contains("did you mean `echo`?"), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:7:27: at `steps[1].retry.max_attempts`"),
        "{stderr}"
    );
    let (code, _, stderr) = sb.run(&["--error-format", "json", "saga", "validate", "bad.yaml"]);
    assert_eq!(code, 1);
    let first: Json = serde_json::from_str(stderr.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], "steps[0].action.handler");
    assert_eq!(first["line"], 4);
}

#[test]
fn usage_and_data_errors_exit_2() {
    let sb = Sandbox::new();
    let (code, _, stderr) = sb.run(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "{not json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = sb.run(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        r#"{"order_id": 1}"#,
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`input.customer` is missing"), "{stderr}");
    let (code, _, stderr) = sb.run(&[
        "saga",
        "run",
        "sagas/place_order.yaml",
        "--input",
        "@sagas/inputs/order_ok.json",
        "--fail",
        "reserve",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown step `reserve`"), "{stderr}");
    let (code, _, _) = sb.run(&["saga", "run", "missing.yaml", "--input", "{}"]);
    assert_eq!(code, 2);
}

#[test]
fn graph_draws_the_compensation_path() {
    let sb = Sandbox::new();
    let (code, stdout, _) = sb.run(&["saga", "graph", "sagas/place_order.yaml"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("flowchart TD"));
    assert!(stdout.contains("s2 -. fails .-> u1"), "{stdout}");
    let (code, stdout, _) = sb.run(&["saga", "graph", "sagas/place_order.yaml", "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("digraph"));
    assert!(stdout.contains("u1 -> u0;"), "{stdout}");
}
