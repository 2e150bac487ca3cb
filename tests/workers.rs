//! Runs in worker processes: a killed worker fails only its own run, with the reason; a killed
//! `hearth train` is listed as interrupted however often its store is read; the queue starts
//! runs one after another under a limit of one, in its order.

mod support;

use hearth_engine::project::RunStatus;
use hearth_engine::project::live::{send_control, worker_alive};
use hearth_engine::project::queue::RunQueue;
use hearth_engine::train::{RunControl, prepare_run, spawn_worker_process};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{hearth, ok, tiny_flags, tiny_spec};

/// `hearth --project P runs --json`, as a list of rows.
fn runs_json(project: &Path) -> Vec<Value> {
    let out = ok(hearth()
        .arg("--project")
        .arg(project)
        .args(["runs", "--json"]));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], name: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["name"] == name)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn store_status(dir: &Path) -> RunStatus {
    hearth_engine::project::RunStore::open(dir)
        .unwrap()
        .status()
        .unwrap()
}

fn steps_of(dir: &Path) -> usize {
    hearth_engine::project::RunStore::open(dir)
        .unwrap()
        .last_step()
        .unwrap()
        .map_or(0, |(s, _)| s)
}

/// A prepared run folder of the project (`steps` steps).
fn prepared(project: &Path, name: &str, steps: usize) -> PathBuf {
    let dir = project.join("runs").join(name);
    prepare_run(tiny_spec(name, steps), &dir).unwrap();
    dir
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hearth"))
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_killed_worker_fails_only_its_run_with_the_reason() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    let doomed = prepared(project.path(), "doomed", 1_000_000);
    let other = prepared(project.path(), "other", 1_000_000);
    let handle = spawn_worker_process(&exe(), Some(project.path()), &doomed, false, None).unwrap();
    let other_handle =
        spawn_worker_process(&exe(), Some(project.path()), &other, false, None).unwrap();
    wait_for("both runs to step", Duration::from_secs(60), || {
        steps_of(&doomed) > 2 && steps_of(&other) > 2
    });
    let pid = hearth_engine::project::live::worker_process(&doomed)
        .unwrap()
        .pid;
    assert_ne!(pid, std::process::id(), "trained in its own process");
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for(
        "the killed run to be marked",
        Duration::from_secs(20),
        || matches!(store_status(&doomed), RunStatus::Failed { .. }),
    );
    let RunStatus::Failed { reason } = store_status(&doomed) else {
        unreachable!()
    };
    assert!(
        reason.contains("signal 9") && reason.contains("SIGKILL"),
        "the reason names the signal: {reason}"
    );
    // The other run goes on.
    let before = steps_of(&other);
    wait_for("the other run to go on", Duration::from_secs(30), || {
        steps_of(&other) > before + 5
    });
    assert_eq!(store_status(&other), RunStatus::Running);
    // Stopped from this process through its store: it ends with a checkpoint.
    send_control(&other, RunControl::Stop).unwrap();
    wait_for("the other run to stop", Duration::from_secs(60), || {
        store_status(&other) == RunStatus::Stopped
    });
    drop((handle, other_handle));
}

#[test]
fn a_killed_train_is_listed_as_interrupted_however_often_it_is_read() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    for (name, signal) in [("termed", "-TERM"), ("killed", "-KILL")] {
        let mut train = hearth()
            .arg("--project")
            .arg(project.path())
            .args(["train", "--name", name])
            .args(tiny_flags(1_000_000))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("a first step", Duration::from_secs(60), || {
            row(&runs_json(project.path()), name).is_some_and(|r| r["step"].as_u64() > Some(1))
        });
        assert_eq!(
            row(&runs_json(project.path()), name).unwrap()["status"],
            "running"
        );
        kill(&train, signal);
        train.wait().unwrap();
        // Read over and over, as a window and a terminal would: it stays interrupted.
        let start = Instant::now();
        wait_for("interrupted", Duration::from_secs(5), || {
            row(&runs_json(project.path()), name).unwrap()["status"] == "interrupted"
        });
        assert!(start.elapsed() < Duration::from_secs(5));
        for _ in 0..5 {
            assert_eq!(
                row(&runs_json(project.path()), name).unwrap()["status"],
                "interrupted"
            );
        }
    }
}

#[test]
fn the_queue_runs_one_at_a_time_in_its_order() {
    let project = tempfile::tempdir().unwrap();
    let _workers = support::KillWorkersOnDrop(project.path().to_path_buf());
    let p = project.path();
    ok(hearth()
        .arg("--project")
        .arg(p)
        .args(["queue", "--limit", "1"]));
    for name in ["first", "second", "third"] {
        let out = ok(hearth()
            .arg("--project")
            .arg(p)
            .args(["train", "--queue", "--name", name])
            .args(tiny_flags(1_000_000)));
        let said = String::from_utf8_lossy(&out.stdout);
        if name == "first" {
            assert!(said.contains("started in a worker process"), "{said}");
        } else {
            assert!(said.contains("queued at position"), "{said}");
        }
    }
    let dirs: Vec<PathBuf> = ["first", "second", "third"]
        .iter()
        .map(|n| PathBuf::from(row(&runs_json(p), n).unwrap()["dir"].as_str().unwrap()))
        .collect();
    // The last two swap places; the order is the file's, read by every process.
    ok(hearth()
        .arg("--project")
        .arg(p)
        .args(["queue", "--down", "second"]));
    let listed = String::from_utf8_lossy(&ok(hearth().arg("--project").arg(p).arg("queue")).stdout)
        .to_string();
    assert!(
        listed.rfind("third").unwrap() < listed.rfind("second").unwrap(),
        "{listed}"
    );
    assert_eq!(
        RunQueue::new(p)
            .read()
            .unwrap()
            .waiting
            .iter()
            .map(|r| r.dir.clone())
            .collect::<Vec<_>>(),
        [dirs[2].clone(), dirs[1].clone()]
    );
    // Each worker starts the next when it ends; never two at once.
    for (i, expected) in [&dirs[0], &dirs[2], &dirs[1]].into_iter().enumerate() {
        wait_for("the next run to start", Duration::from_secs(60), || {
            worker_alive(expected) && steps_of(expected) > 0
        });
        let alive: Vec<&PathBuf> = dirs.iter().filter(|d| worker_alive(d)).collect();
        assert_eq!(
            alive,
            [expected],
            "run {i}: one at a time, in the queue's order"
        );
        send_control(expected, RunControl::Stop).unwrap();
        wait_for("the run to stop", Duration::from_secs(60), || {
            store_status(expected) == RunStatus::Stopped
        });
    }
    assert!(RunQueue::new(p).read().unwrap().waiting.is_empty());
}
