//! `GET /<c>/sockets` and `sidecar sockets` on a container listening on a TCP and a UDP port.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn a_listening_container_shows_its_sockets_with_their_owners() {
    if !privileged(&["unshare", "nsenter", "python3", "curl", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("nc -l -p 18081 & exec sleep 100000"));
    wait_until("nc", Duration::from_secs(5), || !c.find("nc -l").is_empty());
    let nc = c.find("nc -l")[0];
    // busybox has no UDP server: a python one in the container's network namespace, moved
    // into its cgroup so that it is one of the container's processes.
    let mut udp = KillOnDrop(
        Command::new("nsenter")
            .args(["-t", &c.init.to_string(), "-n", "--", "python3", "-c"])
            .arg("import socket,time; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('::', 15353)); print('ready', flush=True); time.sleep(120)")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(udp.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    c.adopt(udp.0.id());

    let server = Server::start(&[]);
    let list = server.json(&format!("/{}/sockets", c.id));
    let find = |proto: &str, local: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["protocol"] == proto && s["local"] == local)
            .cloned()
            .unwrap_or_else(|| panic!("no {proto} {local} in {list}"))
    };
    let tcp = find("tcp6", "[::]:18081"); // busybox nc listens on IPv6 (dual stack)
    assert_eq!(tcp["state"], "LISTEN");
    assert_eq!(
        tcp["processes"],
        serde_json::json!([{"pid": nc, "comm": "nc"}])
    );
    let u = find("udp6", "[::]:15353");
    assert_eq!(u["state"], "UNCONN");
    assert_eq!(u["processes"][0]["pid"], udp.0.id());
    // The host's sockets are not the container's.
    let host = server.json("/host/sockets");
    assert!(!host
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["local"] == "[::]:18081"));
    assert!(server.json(&format!("/{}", c.id))["resources"]
        .as_array()
        .unwrap()
        .contains(&Value::from("sockets")));

    let out = Command::new(SIDECAR)
        .args(["sockets", &c.id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[::]:18081") && text.contains(&format!("{nc}/nc")),
        "{text}"
    );
}
