//! The on-disk state: port files (checked by an independent reader that
//! follows the agent's reload rules), atomic writes, permissions, corrupt
//! and planted entries, the Multus cache, the per-pod lock.

mod common;

use common::TempDir;
use contrail_cni::agent::{Annotations, PortRequest, VmiConfig};
use contrail_cni::cni::error::code;
use contrail_cni::config::VifType;
use contrail_cni::deadline::Deadline;
use contrail_cni::ids::{IfName, Mac, Uuid, VmName};
use contrail_cni::store::{MultusCache, PortFile, Store};
use contrail_cni::vif::names::host_name;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VM: &str = "k8s__default__web-1";
const VMI_A: &str = "6f3e0000-0000-4000-8000-00000000000a";
const VMI_B: &str = "6f3e0000-0000-4000-8000-00000000000b";
const POD_UID: &str = "0b1c0000-0000-4000-8000-000000000001";
const VN: &str = "9a2d0000-0000-4000-8000-000000000001";

fn vm(s: &str) -> VmName {
    VmName::parse(s).unwrap()
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse(s).unwrap()
}

/// A valid port file: interface `eth<index>`, nested (VLAN 100) for index 1.
fn port(vm_name: &str, vmi: &str, index: u32) -> PortFile {
    let vif_type = if index == 1 {
        VifType::Macvlan
    } else {
        VifType::Veth
    };
    let ifname = IfName::parse(&format!("eth{index}")).unwrap();
    PortFile {
        port: PortRequest {
            vm_uuid: uuid(POD_UID),
            vm_name: vm(vm_name),
            host_ifname: host_name(vif_type, &uuid(POD_UID), &ifname),
            vn_uuid: uuid(VN),
            vmi_uuid: uuid(vmi),
            vm_id: "c0ffee".parse().unwrap(),
            vm_ifname: ifname,
            vm_namespace: "/proc/1/ns/net".into(),
        },
        vif_type,
        pod_uid: Some(uuid(POD_UID)),
        network: "default".into(),
        index,
        vlan_id: (index == 1).then_some(100),
    }
}

fn forever() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The store under `<tmp>/ports/vm`, which does not exist yet.
fn store(tmp: &TempDir) -> Store {
    Store::new(&tmp.path().join("ports").join("vm"))
}

fn run_reader(config_dir: &Path) -> (bool, serde_json::Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/port_reader.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(config_dir)
        .output()
        .expect("python3");
    let v = serde_json::from_slice(&out.stdout).expect("reader output is JSON");
    (out.status.success(), v)
}

#[test]
fn port_files_are_accepted_by_the_independent_reader() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    s.write_port(&port(VM, &VMI_B.to_uppercase(), 1)).unwrap();
    s.write_port(&port("k8s__kube-system__dns.x", VMI_A, 0))
        .unwrap();
    let (ok, out) = run_reader(s.config_dir());
    assert!(ok, "{out:#}");
    let ports = out["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 3);
    let files: Vec<&str> = ports.iter().map(|p| p["file"].as_str().unwrap()).collect();
    assert!(
        files.contains(&VMI_B),
        "upper-case UUID written lower-case: {files:?}"
    );
    assert!(ports[0]["host-ifname"].as_str().unwrap().starts_with("tap"));
    assert_eq!(ports[0]["vm-id"], "c0ffee");
}

#[test]
fn the_reader_catches_what_the_agent_would_mis_load() {
    // The reader must not be a rubber stamp: a `<uuid>.tmp`, a wrong mode and
    // a missing key are all reported.
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    let dir = s.config_dir().join(VM);
    std::fs::copy(dir.join(VMI_A), dir.join(format!("{VMI_A}.tmp"))).unwrap();
    std::fs::set_permissions(
        dir.join(format!("{VMI_A}.tmp")),
        PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join(VMI_B), r#"{"vm-uuid":"x"}"#).unwrap();
    let (ok, out) = run_reader(s.config_dir());
    assert!(!ok);
    let errors = out["errors"].to_string();
    assert!(errors.contains(".tmp: the agent would load"), "{errors}");
    assert!(errors.contains("want 0o600"), "{errors}");
    assert!(errors.contains("missing or non-string"), "{errors}");
}

#[test]
fn directories_0700_files_0600_parents_created() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    assert!(!s.config_dir().exists());
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    let vm_dir = s.config_dir().join(VM);
    assert_eq!(mode(&vm_dir), 0o700);
    assert_eq!(mode(&vm_dir.join(VMI_A)), 0o600);
    assert_eq!(mode(s.config_dir()), 0o700, "created parents are 0700 too");
    // An existing pod directory with the reference's 0644 is repaired.
    std::fs::set_permissions(&vm_dir, PermissionsExt::from_mode(0o644)).unwrap();
    s.write_port(&port(VM, VMI_B, 1)).unwrap();
    assert_eq!(mode(&vm_dir), 0o700);

    let cache = MultusCache {
        container_id: "c".parse().unwrap(),
        pod_uid: None,
        vmis: vec![],
    };
    s.write_multus_cache(&vm(VM), &cache).unwrap();
    let multus = tmp.path().join("ports").join("multus");
    assert_eq!(mode(&multus), 0o700);
    assert_eq!(mode(&multus.join(VM)), 0o600);
    let _lock = s.lock_pod(&vm(VM), &forever()).unwrap();
    let locks = tmp.path().join("ports").join("cni-locks");
    assert_eq!(mode(&locks), 0o700);
    assert_eq!(mode(&locks.join(VM)), 0o600);
}

#[test]
fn read_back_round_trip_and_overwrite() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    let (a, b) = (port(VM, VMI_A, 0), port(VM, VMI_B, 1));
    s.write_port(&b).unwrap();
    s.write_port(&a).unwrap();
    let ports = s.read_ports(&vm(VM));
    assert!(ports.bad.is_empty(), "{:?}", ports.bad);
    assert_eq!(ports.good, vec![a.clone(), b.clone()]);
    let mut a2 = a.clone();
    a2.port.vm_id = "second-sandbox".parse().unwrap();
    s.write_port(&a2).unwrap();
    assert_eq!(s.read_ports(&vm(VM)).good[0].port.vm_id, "second-sandbox");
    let absent = s.read_ports(&vm("k8s__default__absent"));
    assert!(absent.good.is_empty() && absent.bad.is_empty());
    // Files of the previous version wrote "" for a missing pod UID.
    let old = a
        .to_json()
        .replace(&format!("\"pod-uid\": \"{POD_UID}\""), "\"pod-uid\": \"\"");
    assert_ne!(old, a.to_json());
    std::fs::write(s.config_dir().join(VM).join(VMI_A), old).unwrap();
    assert_eq!(s.read_ports(&vm(VM)).good[0].pod_uid, None);
}

#[test]
fn temp_files_never_start_with_a_uuid() {
    // Watch the directory while writing: every name ever seen is either a
    // port file (exactly a UUID) or a temp file starting with `.tmp-`.
    let tmp = TempDir::new("store");
    let s = Arc::new(store(&tmp));
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    let dir = s.config_dir().join(VM);
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let watcher = {
        let (dir, done, seen) = (dir.clone(), done.clone(), seen.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for e in std::fs::read_dir(&dir).unwrap().flatten() {
                    seen.lock()
                        .unwrap()
                        .insert(e.file_name().into_string().unwrap());
                }
            }
        })
    };
    for i in 0..300 {
        let mut p = port(VM, if i % 2 == 0 { VMI_A } else { VMI_B }, 0);
        p.port.vm_id = format!("c{i}").parse().unwrap();
        s.write_port(&p).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let seen = seen.lock().unwrap();
    let tmps: Vec<_> = seen.iter().filter(|n| n.starts_with(".tmp-")).collect();
    eprintln!("names seen: {} ({} temp names)", seen.len(), tmps.len());
    for n in seen.iter() {
        assert!(n == VMI_A || n == VMI_B || n.starts_with(".tmp-"), "{n}");
    }
    // After the writes nothing but the port files is left.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn corrupt_planted_and_misplaced_entries_are_reported_not_followed() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    let dir = s.config_dir().join(VM);
    let empty = "6f3e0000-0000-4000-8000-0000000000e1";
    let corrupt = "6f3e0000-0000-4000-8000-0000000000e2";
    let truncated = "6f3e0000-0000-4000-8000-0000000000e3";
    let wrong_name = "6f3e0000-0000-4000-8000-0000000000e4";
    std::fs::write(dir.join(empty), "").unwrap();
    std::fs::write(dir.join(corrupt), [0xff, 0xfe, 0x00, b'{']).unwrap();
    let full = std::fs::read_to_string(dir.join(VMI_A)).unwrap();
    std::fs::write(dir.join(truncated), &full[..full.len() / 2]).unwrap();
    std::fs::write(dir.join(wrong_name), &full).unwrap();
    std::fs::write(dir.join(format!("{VMI_B}.tmp")), &full).unwrap();
    std::fs::write(dir.join("README"), "not ours").unwrap();
    std::fs::create_dir(dir.join("6f3e0000-0000-4000-8000-0000000000d1")).unwrap();
    let fifo = "6f3e0000-0000-4000-8000-0000000000f1";
    nix::unistd::mkfifo(
        &dir.join(fifo),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let link = "6f3e0000-0000-4000-8000-0000000000f2";
    std::os::unix::fs::symlink(dir.join(VMI_A), dir.join(link)).unwrap();
    // Parseable, but naming a link outside the plugin's naming rule.
    let foreign = "6f3e0000-0000-4000-8000-0000000000f3";
    let mut pf = port(VM, foreign, 0);
    pf.port.host_ifname = IfName::parse("ens3").unwrap();
    std::fs::write(dir.join(foreign), pf.to_json()).unwrap();
    let ports = s.read_ports(&vm(VM));
    assert_eq!(ports.good.len(), 1);
    let mut reasons: Vec<(String, String)> = ports
        .bad
        .iter()
        .map(|b| (b.name.clone(), b.reason.clone()))
        .collect();
    reasons.sort();
    eprintln!("{reasons:#?}");
    assert_eq!(reasons.len(), 9, "{reasons:?}");
    let reason = |n: &str| reasons.iter().find(|(f, _)| f == n).unwrap().1.clone();
    assert!(reason(fifo).contains("not a regular file"));
    assert!(reason(link).contains("symlink"));
    assert!(reason(empty).contains("invalid"));
    assert!(reason(truncated).contains("invalid"));
    assert!(reason(wrong_name).contains("not the file's name"));
    assert!(reason(foreign).contains("not the plugin's name"));
    assert!(reason(&format!("{VMI_B}.tmp")).contains("agent would load"));
    // Every bad entry but the directory can be removed; the symlink's
    // target survives.
    for b in &ports.bad {
        s.remove_bad(b).unwrap();
    }
    let left = s.read_ports(&vm(VM));
    assert_eq!(left.bad.len(), 1, "{:?}", left.bad);
    assert!(dir.join(VMI_A).exists());
}

#[test]
fn stale_temp_files_are_cleaned_live_ones_kept() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    let dir = s.config_dir().join(VM);
    // pid_max is at most 2^22: this pid cannot be running.
    let stale = dir.join(".tmp-99999999-0");
    let live = dir.join(format!(".tmp-{}-999", std::process::id()));
    std::fs::write(&stale, "x").unwrap();
    std::fs::write(&live, "x").unwrap();
    let ports = s.read_ports(&vm(VM));
    assert_eq!((ports.good.len(), ports.bad.len()), (1, 0));
    assert!(!stale.exists());
    assert!(live.exists());
    std::fs::remove_file(&live).unwrap();

    s.remove_port(&vm(VM), &uuid(VMI_A)).unwrap();
    std::fs::write(&stale, "x").unwrap();
    s.remove_vm_dir_if_empty(&vm(VM)).unwrap();
    assert!(!dir.exists(), "stale temp files do not keep the directory");
}

#[test]
fn removals_are_idempotent() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    let v = vm(VM);
    s.remove_port(&v, &uuid(VMI_A)).unwrap();
    s.remove_vm_dir_if_empty(&v).unwrap();
    s.remove_multus_cache(&v).unwrap();
    assert!(s.vm_names().unwrap().is_empty());
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    s.write_port(&port(VM, VMI_B, 1)).unwrap();
    s.remove_port(&v, &uuid(&VMI_A.to_uppercase())).unwrap();
    s.remove_vm_dir_if_empty(&v).unwrap();
    assert!(s.config_dir().join(VM).exists(), "not empty: kept");
    assert!(s.has_state(&v));
    s.remove_port(&v, &uuid(VMI_B)).unwrap();
    s.remove_port(&v, &uuid(VMI_B)).unwrap();
    s.remove_vm_dir_if_empty(&v).unwrap();
    assert!(!s.config_dir().join(VM).exists());
    assert!(!s.has_state(&v));
}

/// A planted symlink where a VM directory or the state directories go is
/// never followed: nothing is written into, or chmodded at, its target.
#[test]
fn planted_directory_symlinks_are_not_followed() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    let decoy = tmp.path().join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::set_permissions(&decoy, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(s.config_dir()).unwrap();
    std::os::unix::fs::symlink(&decoy, s.config_dir().join(VM)).unwrap();
    std::os::unix::fs::symlink(&decoy, tmp.path().join("ports/multus")).unwrap();
    std::os::unix::fs::symlink(&decoy, tmp.path().join("ports/cni-locks")).unwrap();
    let e = s.write_port(&port(VM, VMI_A, 0)).unwrap_err();
    assert_eq!(e.code, code::STATE);
    let cache = MultusCache {
        container_id: "c".parse().unwrap(),
        pod_uid: None,
        vmis: vec![],
    };
    assert!(s.write_multus_cache(&vm(VM), &cache).is_err());
    assert!(s.lock_pod(&vm(VM), &forever()).is_err());
    assert!(s.read_ports(&vm(VM)).good.is_empty());
    assert!(
        std::fs::read_dir(&decoy).unwrap().next().is_none(),
        "decoy untouched"
    );
    assert_eq!(mode(&decoy), 0o755, "decoy not chmodded");
}

#[test]
fn names_that_could_escape_cannot_even_be_built() {
    let long = "a".repeat(256);
    for bad_vm in [
        "",
        "../x",
        "..",
        ".",
        "a/b",
        ".hidden",
        "x\0y",
        long.as_str(),
    ] {
        assert!(VmName::parse(bad_vm).is_err(), "{bad_vm:?}");
    }
    for bad_vmi in [
        "../../etc/passwd",
        "",
        "6f3e0000-0000-4000-8000-00000000000",
        "6f3e0000/000-4000-8000-00000000000a",
    ] {
        assert!(Uuid::parse(bad_vmi).is_err(), "{bad_vmi:?}");
    }
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port(&"a".repeat(255), VMI_A, 0)).unwrap();
    let top: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(top, vec![std::ffi::OsString::from("ports")]);
}

#[test]
fn vm_names_lists_pod_directories_only() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    s.write_port(&port("k8s__b__y", VMI_A, 0)).unwrap();
    s.write_port(&port("k8s__a__x", VMI_A, 0)).unwrap();
    std::fs::write(s.config_dir().join("stray-file"), "").unwrap();
    std::fs::create_dir(s.config_dir().join(".hidden")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), s.config_dir().join("k8s__c__link")).unwrap();
    assert_eq!(
        s.vm_names().unwrap(),
        vec![vm("k8s__a__x"), vm("k8s__b__y")]
    );
}

fn vmi_config(i: u32) -> VmiConfig {
    VmiConfig {
        id: uuid(&format!("6f3e0000-0000-4000-8000-00000000000{i}")),
        vm_uuid: uuid(POD_UID),
        vn_id: uuid(VN),
        vn_name: "default-domain:k8s-default:k8s-default-pod-network".into(),
        mac: Mac::parse(&format!("02:00:00:00:00:0{i}")).unwrap(),
        vlan_id: None,
        index: i,
        network: Some("blue".into()),
        ifname: None,
        annotations: Annotations::parse(&[
            format!("{{index:{i}/2}}"),
            "{network:blue}".into(),
            "{odd:\"quoted\\\":x}".into(),
        ]),
    }
}

#[test]
fn multus_cache_round_trip_and_corruption() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    let v = vm(VM);
    assert!(s.read_multus_cache(&v).is_none());
    let cache = MultusCache {
        container_id: "c0ffee".parse().unwrap(),
        pod_uid: Some(uuid(POD_UID)),
        vmis: vec![vmi_config(0), vmi_config(1)],
    };
    s.write_multus_cache(&v, &cache).unwrap();
    assert_eq!(s.read_multus_cache(&v), Some(cache.clone()));
    assert_eq!(
        s.read_multus_cache(&v).unwrap().vmis[1].annotations.index(),
        Some((1, 2))
    );
    assert!(s.has_state(&v));
    // The cache is outside the tree the agent scans.
    assert!(run_reader(s.config_dir()).0);
    let file = tmp.path().join("ports/multus").join(VM);
    assert!(file.exists());
    assert_eq!(s.multus_cache_names().unwrap(), vec![v.clone()]);

    std::fs::write(&file, "{\"container-id\":").unwrap();
    assert!(s.read_multus_cache(&v).is_none());
    assert!(!file.exists(), "unreadable cache removed");
    s.write_multus_cache(&v, &cache).unwrap();
    s.remove_multus_cache(&v).unwrap();
    assert!(s.read_multus_cache(&v).is_none());
}

#[test]
fn pod_lock_serializes_threads_and_is_bounded() {
    let tmp = TempDir::new("store");
    let s = Arc::new(store(&tmp));
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = s.lock_pod(&vm(VM), &forever()).unwrap();
    let waiter = {
        let (s, order) = (s.clone(), order.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            let _l = s.lock_pod(&vm(VM), &forever()).unwrap();
            order.lock().unwrap().push("second");
            t.elapsed()
        })
    };
    // Another pod is not blocked.
    drop(s.lock_pod(&vm("k8s__default__other"), &forever()).unwrap());
    // A waiter with a short deadline gives up with code 11.
    let e = s
        .lock_pod(&vm(VM), &Deadline::after(Duration::from_millis(100)))
        .err()
        .unwrap();
    assert_eq!(e.code, code::TRY_AGAIN_LATER, "{e}");
    std::thread::sleep(Duration::from_millis(100));
    order.lock().unwrap().push("first-done");
    drop(first);
    let waited = waiter.join().unwrap();
    assert_eq!(*order.lock().unwrap(), ["first-done", "second"]);
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
}

/// The lock file goes with the pod's last state; a waiter that was queued
/// on the removed file notices and locks a file that is at the path.
#[test]
fn lock_files_go_with_the_state() {
    let tmp = TempDir::new("store");
    let s = Arc::new(store(&tmp));
    let v = vm(VM);
    let lock_file = tmp.path().join("ports/cni-locks").join(VM);
    s.write_port(&port(VM, VMI_A, 0)).unwrap();
    s.lock_pod(&v, &forever()).unwrap().finish(&s);
    assert!(lock_file.exists(), "state left: the lock stays");
    let first = s.lock_pod(&v, &forever()).unwrap();
    let waiter = {
        let (s, lock_file) = (s.clone(), lock_file.clone());
        std::thread::spawn(move || {
            let l = s.lock_pod(&vm(VM), &forever()).unwrap();
            assert!(lock_file.exists(), "the waiter locked the file at the path");
            drop(l);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    s.remove_port(&v, &uuid(VMI_A)).unwrap();
    s.remove_vm_dir_if_empty(&v).unwrap();
    first.finish(&s);
    waiter.join().unwrap();
    s.lock_pod(&v, &forever()).unwrap().finish(&s);
    assert!(!lock_file.exists(), "no state: no lock file");
    assert!(s.lock_names().unwrap().is_empty());
}

#[test]
fn pod_lock_excludes_other_processes() {
    let tmp = TempDir::new("store");
    let s = store(&tmp);
    let lock_file = tmp.path().join("ports/cni-locks").join(VM);
    let try_lock = || {
        std::process::Command::new("flock")
            .args(["-n", "-E", "99"])
            .arg(&lock_file)
            .arg("true")
            .status()
            .unwrap()
            .code()
    };
    let held = s.lock_pod(&vm(VM), &forever()).unwrap();
    assert_eq!(try_lock(), Some(99), "another process cannot take it");
    drop(held);
    assert_eq!(try_lock(), Some(0), "released on drop");
    // And the other way round: we wait while another process holds it.
    let mut child = std::process::Command::new("flock")
        .arg(&lock_file)
        .args(["sleep", "0.3"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let _l = s.lock_pod(&vm(VM), &forever()).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    child.wait().unwrap();
}
