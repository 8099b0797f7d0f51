//! `sidecar exec -t`, driven through `script` (which gives the sidecar a terminal, as a
//! person's would be): the program gets a terminal of its own, sized as ours and resized
//! with it, ^C typed at ours reaches the program and not the sidecar, and our terminal's
//! settings are back as they were afterwards.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const TOOLS: [&str; 4] = ["unshare", "setpriv", "script", "/bin/busybox"];

/// `script` running `shell` on a terminal of its own; everything it prints is collected.
struct Session {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    fn start(shell: &str) -> Session {
        let mut child = Command::new("script")
            .args(["-qefc", shell, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stdout.take().unwrap();
        let o = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Session { child, out }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, what: &str) {
        wait_until(what, Duration::from_secs(15), || self.text().contains(what));
    }

    fn type_bytes(&mut self, b: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b).unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) -> (i32, String) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.text())
    }
}

fn tty_nr(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[test]
fn a_terminal_of_its_own_sized_as_ours() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100800"));
    let short = &c.id[..12];
    // Our terminal: 33 rows, 101 columns; the program's terminal settings, then a resize.
    let mut s = Session::start(&format!(
        "stty rows 33 cols 101; stty -g > /dev/null; before=$(stty -g); \
         {SIDECAR} exec -t {short} -- sh -c 'stty -a | head -1; [ -t 0 ] && [ -t 1 ] && echo both-ttys; \
           trap \"stty size; echo resized\" WINCH; echo waiting; while [ -z \"$line\" ]; do read line; done; echo \"read:$line\"'; \
         echo \"status=$?\"; [ \"$(stty -g)\" = \"$before\" ] && echo restored"
    ));
    s.wait_for("waiting");
    // The program's terminal is not ours: another controlling terminal.
    let program = c
        .find("sh -c stty -a")
        .first()
        .copied()
        .expect("the program");
    let sidecar = children(s.child.id())
        .into_iter()
        .flat_map(|p| std::iter::once(p).chain(children(p)))
        .find(|&p| {
            sidecar::procfs::argv(p)
                .is_ok_and(|a| a.first().is_some_and(|x| x.ends_with("sidecar")))
        })
        .expect("the sidecar");
    assert_ne!(tty_nr(program), 0);
    assert_ne!(
        tty_nr(program),
        tty_nr(sidecar),
        "the program has the caller's terminal"
    );
    // A resize of our terminal reaches the program's.
    Command::new("stty")
        .args(["rows", "40", "cols", "120", "-F"])
        .arg(format!("/proc/{sidecar}/fd/0"))
        .status()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-WINCH", &sidecar.to_string()])
        .status();
    s.wait_for("resized");
    s.type_bytes(b"typed\r");
    let (code, out) = s.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rows 33; columns 101;"), "{out}");
    assert!(out.contains("both-ttys"), "{out}");
    assert!(out.contains("40 120"), "{out}");
    assert!(out.contains("read:typed"), "{out}");
    assert!(out.contains("status=0"), "{out}");
    assert!(
        out.contains("restored"),
        "our terminal's settings were not restored: {out}"
    );
}

#[test]
fn ctrl_c_reaches_the_program_not_the_sidecar() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100801"));
    let short = &c.id[..12];
    let mut s = Session::start(&format!(
        "{SIDECAR} exec -t {short} -- sh -c 'trap \"echo got-INT; exit 7\" INT; echo ready; while :; do sleep 0.1; done'; \
         echo \"status=$?\""
    ));
    s.wait_for("ready");
    s.type_bytes(b"\x03");
    s.wait_for("status=");
    let (code, out) = s.finish();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("got-INT"), "{out}");
    assert!(
        out.contains("status=7"),
        "the sidecar did not report the program's status: {out}"
    );
    assert!(c.find("while :").is_empty());
}

#[test]
fn a_piped_stdin_still_works_with_a_terminal() {
    if !privileged(&TOOLS) {
        return;
    }
    // Not at a terminal (CI): the program still gets one; our input ends as ^D would.
    let c = FakeContainer::start(Spec::podman("exec sleep 100802"));
    let mut child = Command::new(SIDECAR)
        .args([
            "exec",
            "-t",
            &c.id[..12],
            "--",
            "sh",
            "-c",
            "[ -t 0 ] && echo tty; cat; echo done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("tty\r\n"), "{text:?}");
    assert!(text.contains("line one\r\n"), "{text:?}");
    assert!(text.contains("done"), "{text:?}");
}
