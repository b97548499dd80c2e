//! Port registry tests with real OS processes.
//!
//! A claimant is this test binary run again with `TABMUX_TEST_REGISTRY_CHILD` set: it
//! runs only `child_claim`, which waits for a `go` line on stdin, claims a port, prints
//! the outcome and holds the claim until its stdin closes.

mod common_bridge;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common_bridge::{TempDir, free_block};
use tabmux::registry::{
    InstanceMeta, PortRange, RegistryError, claim_port, clean_stale, new_instance_id, scan,
};

const CHILD_ENV: &str = "TABMUX_TEST_REGISTRY_CHILD";
const MARK: &str = "@@registry-child ";

/// The claimant's body; a no-op in a normal test run.
#[test]
fn child_claim() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, range) = spec.split_once('|').expect("spec is DIR|RANGE");
    let range: PortRange = range.parse().expect("range");
    let mut stdin = std::io::stdin().lock();
    let mut go = String::new();
    stdin.read_line(&mut go).expect("go line");
    let mut meta = InstanceMeta::for_this_process(new_instance_id());
    meta.client_name = Some("child".into());
    match claim_port(Path::new(dir), range, &meta) {
        Ok(claim) => {
            println!("\n{MARK}PORT {}", claim.port());
            let mut rest = Vec::new();
            let _ = stdin.read_to_end(&mut rest);
            drop(claim);
        }
        Err(e @ RegistryError::RangeFull { .. }) => println!("\n{MARK}FULL {e}"),
        Err(e) => println!("\n{MARK}ERROR {e}"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Port(u16),
    Full(String),
    Error(String),
}

struct Claimant {
    child: Child,
    stdin: Option<ChildStdin>,
    outcome: mpsc::Receiver<Outcome>,
}

impl Claimant {
    fn spawn(dir: &Path, range: PortRange) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_claim", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{}|{range}", dir.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn claimant");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, outcome) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(at) = line.find(MARK) else { continue };
                let rest = &line[at + MARK.len()..];
                let o = if let Some(p) = rest.strip_prefix("PORT ") {
                    Outcome::Port(p.trim().parse().unwrap())
                } else if let Some(m) = rest.strip_prefix("FULL ") {
                    Outcome::Full(m.to_owned())
                } else {
                    Outcome::Error(rest.to_owned())
                };
                let _ = tx.send(o);
            }
        });
        Self {
            child,
            stdin,
            outcome,
        }
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn outcome(&self) -> Outcome {
        self.outcome
            .recv_timeout(Duration::from_secs(30))
            .expect("claimant reported nothing within 30 s")
    }

    fn claim(dir: &Path, range: PortRange) -> (Self, Outcome) {
        let mut c = Self::spawn(dir, range);
        c.go();
        let o = c.outcome();
        (c, o)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes stdin: the claimant drops its claim and exits cleanly.
    fn release(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "claimant exited with {status}");
    }

    /// SIGKILL (TerminateProcess on Windows): no destructor runs.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Claimant {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn twelve_processes_race_for_eleven_ports() {
    let dir = TempDir::new("race");
    let range = free_block(11);
    let mut claimants: Vec<Claimant> = (0..12)
        .map(|_| Claimant::spawn(dir.path(), range))
        .collect();
    // All are started and waiting; let them go as close together as possible.
    for c in &mut claimants {
        c.go();
    }
    let outcomes: Vec<Outcome> = claimants.iter().map(Claimant::outcome).collect();

    let ports: BTreeSet<u16> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Port(p) => Some(*p),
            _ => None,
        })
        .collect();
    let ports_reported = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Port(_)))
        .count();
    assert_eq!(ports_reported, 11, "outcomes: {outcomes:?}");
    assert_eq!(
        ports.len(),
        11,
        "two claimants got the same port: {outcomes:?}"
    );
    assert!(ports.iter().all(|p| range.contains(*p)));
    let full: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Full(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(full.len(), 1, "outcomes: {outcomes:?}");
    let msg = full[0];
    assert!(msg.contains(&range.to_string()), "{msg}");
    assert!(
        msg.contains("--ports") && msg.contains("TABMUX_PORTS"),
        "{msg}"
    );
    assert!(msg.contains("held by a live tabmux"), "{msg}");

    // The registry shows 11 live owners, each with its own metadata.
    let entries = scan(dir.path());
    let live: Vec<_> = entries.iter().filter(|e| e.live).collect();
    assert_eq!(live.len(), 11, "{entries:?}");
    for (c, o) in claimants.iter().zip(&outcomes) {
        let Outcome::Port(p) = o else { continue };
        let e = live
            .iter()
            .find(|e| e.port == *p)
            .expect("reported port is live");
        let m = e.meta.as_ref().expect("metadata of a live port");
        assert_eq!((m.port, m.pid), (*p, c.pid()), "metadata names its owner");
    }

    for c in claimants {
        c.release();
    }
    let entries = scan(dir.path());
    assert_eq!(entries.len(), 11, "one lock file per port, never deleted");
    assert!(
        entries.iter().all(|e| !e.live && e.meta.is_none()),
        "{entries:?}"
    );
}

#[test]
fn sigkill_frees_the_port_at_once() {
    let dir = TempDir::new("kill");
    let range = free_block(1);
    let port = range.first();

    let (a, first) = Claimant::claim(dir.path(), range);
    assert_eq!(first, Outcome::Port(port));
    let (b, second) = Claimant::claim(dir.path(), range);
    assert!(matches!(second, Outcome::Full(_)), "{second:?}");
    b.release();

    let killed_pid = a.pid();
    a.kill();
    // The dead owner's metadata is left behind, but its lock is gone: stale.
    let entries = scan(dir.path());
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].live);
    assert_eq!(entries[0].meta.as_ref().map(|m| m.pid), Some(killed_pid));

    // No waiting, no PID checks: the next claimant gets the port straight away.
    let (c, third) = Claimant::claim(dir.path(), range);
    assert_eq!(third, Outcome::Port(port));
    let entries = scan(dir.path());
    assert!(entries[0].live);
    assert_eq!(entries[0].meta.as_ref().map(|m| m.pid), Some(c.pid()));
    c.release();
}

#[test]
fn port_used_by_another_program_is_skipped() {
    let dir = TempDir::new("other");
    let range = free_block(3);
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, range.first())).unwrap();

    let (c, got) = Claimant::claim(dir.path(), range);
    assert_eq!(got, Outcome::Port(range.first() + 1));
    // This process is a claimant too (its own lock file handle, so its own lock).
    let mut claim = claim_port(dir.path(), range, &InstanceMeta::for_this_process("me")).unwrap();
    assert_eq!(claim.port(), range.first() + 2);
    let listener = claim.take_listener().expect("listener");
    assert_eq!(listener.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(listener.local_addr().unwrap().port(), claim.port());
    assert!(claim.take_listener().is_none());

    // The squatter's port has a free lock: a claim of a one-port range names the cause.
    let only = PortRange::new(range.first(), range.first()).unwrap();
    match claim_port(dir.path(), only, &InstanceMeta::for_this_process("me2")) {
        Err(RegistryError::RangeFull {
            by_tabmux: 0,
            by_others: 1,
            ..
        }) => {}
        other => panic!("expected RangeFull by another program, got {other:?}"),
    }
    drop(squatter);
    c.release();
}

#[test]
fn metadata_is_rewritten_atomically_and_removed_on_clean_exit() {
    let dir = TempDir::new("meta");
    let range = free_block(2);
    let mut meta = InstanceMeta::for_this_process(new_instance_id());
    let claim = claim_port(dir.path(), range, &meta).unwrap();
    let json = claim.meta_path();
    let read =
        |p: &Path| -> InstanceMeta { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let on_disk = read(&json);
    assert_eq!(on_disk.port, claim.port());
    assert_eq!(on_disk.pid, std::process::id());
    assert_eq!(on_disk.client_name, None);
    assert_eq!(on_disk.version, env!("CARGO_PKG_VERSION"));

    // A reader never sees a partial file while the writer rewrites it many times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (json, stop) = (json.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bytes = std::fs::read(&json).expect("the file is always there");
                let m: InstanceMeta = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("partial metadata ({e}): {bytes:?}"));
                assert_eq!(m.port, claim_port_of(&json));
                reads += 1;
            }
            reads
        })
    };
    for i in 0..300 {
        meta.client_name = Some(format!("Client {i} {}", "x".repeat(i % 50)));
        meta.browsers = i as u32 % 3;
        claim.update_meta(&meta).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(
        read(&json).client_name.as_deref(),
        Some(&*format!("Client 299 {}", "x".repeat(299 % 50)))
    );

    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");

    // A second claimant in another process sees this port live and takes the next.
    let (c, got) = Claimant::claim(dir.path(), range);
    assert_eq!(got, Outcome::Port(claim.port() + 1));
    let child_json = dir.path().join(format!("port-{}.json", claim.port() + 1));
    assert_eq!(read(&child_json).pid, c.pid());
    assert_eq!(read(&child_json).client_name.as_deref(), Some("child"));
    c.release();
    assert!(!child_json.exists(), "a clean exit removes the metadata");

    let lock = dir.path().join(format!("port-{}.lock", claim.port()));
    drop(claim);
    assert!(!json.exists(), "dropping the claim removes the metadata");
    assert!(lock.exists(), "lock files are never deleted");
    let entries = scan(dir.path());
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| !e.live && e.meta.is_none()));
}

fn claim_port_of(json: &Path) -> u16 {
    let name = json.file_name().unwrap().to_str().unwrap();
    name.trim_start_matches("port-")
        .trim_end_matches(".json")
        .parse()
        .unwrap()
}

#[test]
fn scan_ignores_other_files_and_survives_a_missing_dir() {
    let dir = TempDir::new("scan");
    assert!(scan(&dir.path().join("nope")).is_empty());
    for name in [
        "port-.lock",
        "port-abc.json",
        "port-0.lock",
        "port-70000.lock",
        "notes.txt",
        "port-12.json.tmp",
    ] {
        std::fs::write(dir.path().join(name), b"{").unwrap();
    }
    std::fs::write(dir.path().join("port-12.json"), b"not json").unwrap();
    let entries = scan(dir.path());
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].port, 12);
    assert!(!entries[0].live);
    assert!(entries[0].meta.is_none());
}

#[test]
fn state_dir_is_made_when_missing() {
    let dir = TempDir::new("mk");
    let nested = dir.path().join("a/b/state");
    let range = free_block(1);
    let claim = claim_port(&nested, range, &InstanceMeta::for_this_process("x")).unwrap();
    assert!(nested.join(format!("port-{}.lock", claim.port())).exists());
}

/// A killed instance's `port-<p>.json` is removed by the next instance that claims a
/// port, even another one, and `clean_stale` never touches a live instance's file.
#[test]
fn a_killed_instances_record_is_cleaned_up() {
    let dir = TempDir::new("clean");
    let range = free_block(3);
    let (a, first) = Claimant::claim(dir.path(), range);
    assert_eq!(first, Outcome::Port(range.first()));
    let (b, second) = Claimant::claim(dir.path(), range);
    assert_eq!(second, Outcome::Port(range.first() + 1));
    let a_json = dir.path().join(format!("port-{}.json", range.first()));
    let b_json = dir.path().join(format!("port-{}.json", range.first() + 1));
    b.kill();
    assert!(b_json.exists(), "a killed instance leaves its record");
    // A status-like sweep while A lives: only the dead one's record goes.
    assert_eq!(clean_stale(dir.path()), vec![range.first() + 1]);
    assert!(a_json.exists() && !b_json.exists());

    // Killed again, and the next instance (on another port) sweeps it.
    let (c, third) = Claimant::claim(dir.path(), range);
    assert_eq!(third, Outcome::Port(range.first() + 1));
    a.kill();
    assert!(a_json.exists());
    let other = PortRange::new(range.last(), range.last()).unwrap();
    let d = claim_port(dir.path(), other, &InstanceMeta::for_this_process("d")).unwrap();
    assert!(
        !a_json.exists(),
        "the next instance removed the killed one's record"
    );
    let entries = scan(dir.path());
    assert!(
        entries.iter().all(|e| e.live == e.meta.is_some()),
        "{entries:?}"
    );
    drop(d);
    c.release();
}
