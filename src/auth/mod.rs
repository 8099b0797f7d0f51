//! Who may use the API: credentials from a file or the environment, HTTP Digest (RFC 7616,
//! SHA-256 and MD5, `qop=auth`) with server nonces that expire, optional Basic, and a throttle
//! on failed attempts (per IP address, or per peer uid on a unix socket).
//!
//! Invariants: secrets are compared in constant time, never logged, and never kept in the
//! process environment (see `from_env`). A Digest answer is accepted once: every nonce we
//! issue is remembered (a bounded table, keyed to this server instance) with the highest
//! nonce count (`nc`) seen, and a request whose `nc` is not higher is a replay (RFC 7616
//! section 3.4: the server "should" check it; we do), answered 401 with a fresh challenge.

pub mod hash;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hash::{constant_time_eq, md5_hex, sha256_hex};

/// How long a nonce we issued stays valid; after that the client is told `stale=true` and
/// retries without asking the user again.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Failed attempts from one address within `FAIL_WINDOW` before it gets 429.
const MAX_FAILURES: u32 = 10;
const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Nonces remembered at once. The oldest is forgotten first: a client still using it is told
/// `stale=true` and retries with a fresh one, without asking its user again.
const MAX_NONCES: usize = 4096;

/// Who a throttle counts failures against: an address for TCP, the peer's uid for a unix
/// socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Ip(IpAddr),
    Uid(u32),
}

/// The nonces we issued, with the highest nonce count each has been used with.
#[derive(Default)]
struct Nonces {
    last_nc: HashMap<String, u32>,
    order: VecDeque<String>,
}

impl Nonces {
    fn issue(&mut self, nonce: String) {
        while self.order.len() >= MAX_NONCES {
            if let Some(old) = self.order.pop_front() {
                self.last_nc.remove(&old);
            }
        }
        self.last_nc.insert(nonce.clone(), 0);
        self.order.push_back(nonce);
    }

    /// Records `nc` for `nonce`; `false` when the nonce is unknown (forgotten) or `nc` is not
    /// higher than every count it was used with before (a replay).
    fn use_count(&mut self, nonce: &str, nc: u32) -> bool {
        match self.last_nc.get_mut(nonce) {
            Some(last) if nc > *last => {
                *last = nc;
                true
            }
            _ => false,
        }
    }
}
/// One user's secret: a password, or only the MD5 HA1 of an htdigest line (which binds it to
/// one realm and to MD5).
#[derive(Clone)]
pub enum Secret {
    Password(String),
    Htdigest { realm: String, ha1: String },
}

#[derive(Clone)]
pub struct User {
    pub name: String,
    pub secret: Secret,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User({})", self.name) // never the secret
    }
}

/// Parses a credentials file: `user:password` lines, or htdigest `user:realm:HA1` lines (three
/// fields, the third 32 hex digits). Blank lines and `#` comments are skipped.
pub fn parse_credentials(text: &str) -> Result<Vec<User>, String> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected user:password or user:realm:HA1", n + 1))?;
        if name.is_empty() || rest.is_empty() {
            return Err(format!("line {}: empty user or password", n + 1));
        }
        let secret = match rest.rsplit_once(':') {
            Some((realm, ha1))
                if ha1.len() == 32
                    && ha1.bytes().all(|b| b.is_ascii_hexdigit())
                    && !realm.contains(':') =>
            {
                Secret::Htdigest {
                    realm: realm.to_string(),
                    ha1: ha1.to_ascii_lowercase(),
                }
            }
            _ => Secret::Password(rest.to_string()),
        };
        users.push(User {
            name: name.to_string(),
            secret,
        });
    }
    Ok(users)
}

/// Reads `SIDECAR_USER`/`SIDECAR_PASSWORD` and wipes both from the process's environment
/// memory, so that a process sharing our PID namespace cannot read them in
/// `/proc/<sidecar>/environ`. Runs while single-threaded: the token says so.
pub fn from_env(one_thread: crate::sys::SingleThreaded) -> Option<User> {
    let user = std::env::var("SIDECAR_USER").ok();
    let password = std::env::var("SIDECAR_PASSWORD").ok();
    crate::sys::wipe_env_var(one_thread, "SIDECAR_PASSWORD");
    crate::sys::wipe_env_var(one_thread, "SIDECAR_USER");
    match (user, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some(User {
            name: u,
            secret: Secret::Password(p),
        }),
        _ => None,
    }
}

/// The result of checking a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated as this user.
    User(String),
    /// No or wrong credentials: answer 401 with fresh challenges (`stale` when only the nonce
    /// had expired). `failed` when credentials were given and were wrong.
    Challenge { stale: bool, failed: bool },
    /// Too many failures from this address: 429.
    Throttled,
}

pub struct Auth {
    realm: String,
    users: Vec<User>,
    allow_basic: bool,
    key: [u8; 32],
    nonces: Mutex<Nonces>,
    failures: Mutex<HashMap<Peer, (u32, Instant)>>,
}

impl Auth {
    pub fn new(realm: &str, users: Vec<User>, allow_basic: bool) -> std::io::Result<Auth> {
        let mut key = [0u8; 32];
        crate::sys::random_bytes(&mut key)?;
        Ok(Auth {
            realm: realm.to_string(),
            users,
            allow_basic,
            key,
            nonces: Mutex::new(Nonces::default()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// A nonce is its issue time, 8 random bytes and a hash keyed with this instance's key:
    /// one we did not issue, or issued before a restart, is recognised without a look-up.
    fn nonce_with(&self, t: u64, salt: &str) -> String {
        let mut data = self.key.to_vec();
        data.extend_from_slice(format!("{t:016x}{salt}").as_bytes());
        format!("{t:016x}{salt}{}", &sha256_hex(&data)[..32])
    }

    /// A fresh nonce, remembered for replay checks.
    fn new_nonce(&self) -> String {
        let mut salt = [0u8; 8];
        let _ = crate::sys::random_bytes(&mut salt);
        let nonce = self.nonce_with(Self::now(), &hash::hex(&salt));
        self.nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .issue(nonce.clone());
        nonce
    }

    /// `Ok(true)` fresh, `Ok(false)` ours but expired, `Err(())` not ours.
    fn check_nonce(&self, nonce: &str) -> Result<bool, ()> {
        let (Some(t), Some(salt)) = (
            nonce
                .get(..16)
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
            nonce.get(16..32),
        ) else {
            return Err(());
        };
        if nonce.len() != 64
            || !constant_time_eq(self.nonce_with(t, salt).as_bytes(), nonce.as_bytes())
        {
            return Err(());
        }
        Ok(Self::now().saturating_sub(t) <= NONCE_LIFETIME.as_secs())
    }

    fn opaque(&self) -> String {
        sha256_hex(&[&self.key[..], b"opaque"].concat())[..32].to_string()
    }

    /// The `WWW-Authenticate` values of a 401. curl answers only the first Digest challenge it
    /// gets, so SHA-256 comes first, unless a user exists only as an htdigest (MD5) line.
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        let nonce = self.new_nonce();
        let md5_first = self
            .users
            .iter()
            .any(|u| matches!(u.secret, Secret::Htdigest { .. }));
        let algs: [&str; 2] = if md5_first {
            ["MD5", "SHA-256"]
        } else {
            ["SHA-256", "MD5"]
        };
        let mut out: Vec<String> = algs
            .iter()
            .map(|alg| {
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm={alg}, nonce=\"{nonce}\", opaque=\"{}\"{}",
                    self.realm,
                    self.opaque(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect();
        if self.allow_basic {
            out.push(format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm));
        }
        out
    }

    fn throttled(&self, peer: Option<Peer>) -> bool {
        let Some(ip) = peer else { return false };
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match f.get(&ip) {
            Some((n, since)) if since.elapsed() < FAIL_WINDOW => *n >= MAX_FAILURES,
            Some(_) => {
                f.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn record_failure(&self, peer: Option<Peer>) {
        let Some(ip) = peer else { return };
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 10_000 {
            f.retain(|_, (_, since)| since.elapsed() < FAIL_WINDOW);
        }
        let e = f.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= FAIL_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// Checks a request: its method, its request target as sent (path and query) and its
    /// `Authorization` header.
    pub fn check(
        &self,
        method: &str,
        target: &str,
        header: Option<&str>,
        peer: Option<Peer>,
    ) -> Verdict {
        if self.throttled(peer) {
            return Verdict::Throttled;
        }
        let Some(header) = header else {
            return Verdict::Challenge {
                stale: false,
                failed: false,
            };
        };
        let result = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("digest") => {
                self.check_digest(method, target, rest)
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") && self.allow_basic => {
                self.check_basic(rest.trim())
            }
            _ => Err(false),
        };
        match result {
            Ok(user) => Verdict::User(user),
            Err(true) => Verdict::Challenge {
                stale: true,
                failed: false,
            },
            Err(false) => {
                self.record_failure(peer);
                Verdict::Challenge {
                    stale: false,
                    failed: true,
                }
            }
        }
    }

    fn check_basic(&self, b64: &str) -> Result<String, bool> {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| false)?;
        let text = String::from_utf8(decoded).map_err(|_| false)?;
        let (name, pass) = text.split_once(':').ok_or(false)?;
        let user = self.users.iter().find(|u| u.name == name).ok_or(false)?;
        match &user.secret {
            Secret::Password(p) if constant_time_eq(p.as_bytes(), pass.as_bytes()) => {
                Ok(name.to_string())
            }
            Secret::Htdigest { realm, ha1 } => {
                let mine = md5_hex(format!("{name}:{realm}:{pass}").as_bytes());
                if constant_time_eq(mine.as_bytes(), ha1.as_bytes()) {
                    Ok(name.to_string())
                } else {
                    Err(false)
                }
            }
            _ => Err(false),
        }
    }

    /// `Err(true)`: everything right but the nonce (expired, replayed, forgotten or not ours);
    /// `Err(false)`: wrong.
    fn check_digest(&self, method: &str, target: &str, params: &str) -> Result<String, bool> {
        let p = parse_params(params).ok_or(false)?;
        let get = |k: &str| p.get(k).map(String::as_str);
        let (name, realm, nonce, uri, response) = (
            get("username").ok_or(false)?,
            get("realm").ok_or(false)?,
            get("nonce").ok_or(false)?,
            get("uri").ok_or(false)?,
            get("response").ok_or(false)?,
        );
        if realm != self.realm || uri != target || get("qop") != Some("auth") {
            return Err(false);
        }
        let (nc, cnonce) = (get("nc").ok_or(false)?, get("cnonce").ok_or(false)?);
        let algorithm = get("algorithm").unwrap_or("MD5");
        let (h, is_md5): (fn(&[u8]) -> String, bool) = match algorithm.to_ascii_uppercase().as_str()
        {
            "MD5" => (md5_hex, true),
            "SHA-256" => (sha256_hex, false),
            _ => return Err(false),
        };
        let user = self.users.iter().find(|u| u.name == name).ok_or(false)?;
        let ha1 = match &user.secret {
            Secret::Password(pw) => h(format!("{name}:{realm}:{pw}").as_bytes()),
            Secret::Htdigest { realm: r, ha1 } if r == realm && is_md5 => ha1.clone(),
            Secret::Htdigest { .. } => return Err(false),
        };
        let ha2 = h(format!("{method}:{uri}").as_bytes());
        let expected = h(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
        if !constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(false);
        }
        // The response is right for this nonce, so the credentials are: a nonce we did not
        // issue (another instance's, before a restart) is only stale, never a failed login
        // (which would count against everyone behind that address).
        match self.check_nonce(nonce) {
            Ok(true) => {}
            Ok(false) | Err(()) => return Err(true),
        }
        // Right credentials for a nonce of ours: accepted once per nonce count. A replay (or a
        // nonce forgotten to make room) is stale: the client retries with a fresh nonce.
        let nc = (nc.len() == 8)
            .then(|| u32::from_str_radix(nc, 16).ok())
            .flatten()
            .ok_or(false)?;
        let fresh = self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .use_count(nonce, nc);
        if fresh {
            Ok(name.to_string())
        } else {
            Err(true)
        }
    }
}

/// Parses `k=v, k="quoted \"v\""` auth parameters. `None` on malformed input.
pub fn parse_params(s: &str) -> Option<HashMap<String, String>> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s.get(start..i)?.trim().to_ascii_lowercase();
        if i >= b.len() || key.is_empty() {
            return None;
        }
        i += 1;
        let mut val = Vec::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\\' => {
                        val.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    &c => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != b',' {
                val.push(b[i]);
                i += 1;
            }
        }
        let val = String::from_utf8(val).ok()?.trim().to_string();
        if out.insert(key, val).is_some() {
            return None; // a repeated parameter is an attempt to confuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let users = parse_credentials(
            "admin:secret\n# c\n\nold:support-sidecar:0123456789abcdef0123456789abcdef\n",
        )
        .unwrap();
        Auth::new("support-sidecar", users, true).unwrap()
    }

    /// What a client (curl) sends for `GET uri` with nonce count `nc`.
    fn digest(
        alg: &str,
        h: fn(&[u8]) -> String,
        pw: &str,
        uri: &str,
        nonce: &str,
        nc: u32,
    ) -> String {
        let ha1 = h(format!("admin:support-sidecar:{pw}").as_bytes());
        let ha2 = h(format!("GET:{uri}").as_bytes());
        let resp = h(format!("{ha1}:{nonce}:{nc:08x}:abc:auth:{ha2}").as_bytes());
        format!("Digest username=\"admin\", realm=\"support-sidecar\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={alg}, qop=auth, nc={nc:08x}, cnonce=\"abc\", response=\"{resp}\"")
    }

    #[test]
    fn credentials_file_forms() {
        let u = parse_credentials("a:b:c\nx:realm:0123456789ABCDEF0123456789abcdef\n").unwrap();
        assert!(matches!(&u[0].secret, Secret::Password(p) if p == "b:c"));
        assert!(matches!(&u[1].secret, Secret::Htdigest { realm, .. } if realm == "realm"));
        assert!(parse_credentials("nocolon\n").is_err());
        assert!(parse_credentials("user:\n").is_err());
    }

    #[test]
    fn digest_sha256_and_md5() {
        let a = auth();
        for (alg, h) in [
            ("SHA-256", sha256_hex as fn(&[u8]) -> String),
            ("MD5", md5_hex),
        ] {
            let nonce = a.new_nonce();
            let ok = digest(alg, h, "secret", "/x?y=1", &nonce, 1);
            assert_eq!(
                a.check("GET", "/x?y=1", Some(&ok), None),
                Verdict::User("admin".into())
            );
            // The right answer for another URI, a wrong password, a forged nonce: all refused.
            let other = digest(alg, h, "secret", "/x?y=1", &nonce, 2);
            assert!(matches!(
                a.check("GET", "/other", Some(&other), None),
                Verdict::Challenge { failed: true, .. }
            ));
            let bad = digest(alg, h, "wrong", "/x?y=1", &nonce, 3);
            assert!(matches!(
                a.check("GET", "/x?y=1", Some(&bad), None),
                Verdict::Challenge { failed: true, .. }
            ));
            // A nonce not ours (another instance's) with the right password: stale only.
            let foreign = digest(alg, h, "secret", "/x?y=1", &format!("{:064}", 0), 1);
            assert_eq!(
                a.check("GET", "/x?y=1", Some(&foreign), None),
                Verdict::Challenge {
                    stale: true,
                    failed: false
                }
            );
        }
        let old = a.nonce_with(Auth::now() - 1000, "0123456789abcdef");
        let stale = digest("MD5", md5_hex, "secret", "/", &old, 1);
        assert_eq!(
            a.check("GET", "/", Some(&stale), None),
            Verdict::Challenge {
                stale: true,
                failed: false
            }
        );
    }

    #[test]
    fn a_replayed_answer_is_stale() {
        let a = auth();
        let nonce = a.new_nonce();
        let first = digest("SHA-256", sha256_hex, "secret", "/", &nonce, 1);
        assert_eq!(
            a.check("GET", "/", Some(&first), None),
            Verdict::User("admin".into())
        );
        let stale = Verdict::Challenge {
            stale: true,
            failed: false,
        };
        // The same header again, and a lower count: replays.
        assert_eq!(a.check("GET", "/", Some(&first), None), stale);
        let next = digest("SHA-256", sha256_hex, "secret", "/", &nonce, 5);
        assert_eq!(
            a.check("GET", "/", Some(&next), None),
            Verdict::User("admin".into())
        );
        let lower = digest("SHA-256", sha256_hex, "secret", "/", &nonce, 4);
        assert_eq!(a.check("GET", "/", Some(&lower), None), stale);
        // A valid nonce of ours that the table no longer holds is stale too.
        let forgotten = a.nonce_with(Auth::now(), "00000000000000aa");
        let h = digest("SHA-256", sha256_hex, "secret", "/", &forgotten, 1);
        assert_eq!(a.check("GET", "/", Some(&h), None), stale);
        // The table is bounded.
        for _ in 0..MAX_NONCES + 10 {
            a.new_nonce();
        }
        assert_eq!(a.nonces.lock().unwrap().last_nc.len(), MAX_NONCES);
        assert_eq!(a.check("GET", "/", Some(&next), None), stale);
    }

    #[test]
    fn throttles_after_failures() {
        let a = auth();
        let ip = Peer::Ip("127.0.0.9".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(matches!(
                a.check("GET", "/", Some("Digest username=\"x\""), Some(ip)),
                Verdict::Challenge { .. }
            ));
        }
        assert_eq!(a.check("GET", "/", None, Some(ip)), Verdict::Throttled);
        assert!(matches!(
            a.check(
                "GET",
                "/",
                None,
                Some(Peer::Ip("127.0.0.10".parse().unwrap()))
            ),
            Verdict::Challenge { .. }
        ));
        // Unix peers are counted by uid.
        for _ in 0..MAX_FAILURES {
            a.check("GET", "/", Some("Basic eDp5"), Some(Peer::Uid(1234)));
        }
        assert_eq!(
            a.check("GET", "/", None, Some(Peer::Uid(1234))),
            Verdict::Throttled
        );
        assert!(matches!(
            a.check("GET", "/", None, Some(Peer::Uid(1235))),
            Verdict::Challenge { .. }
        ));
    }

    #[test]
    fn basic_when_allowed() {
        let a = auth();
        assert_eq!(
            a.check("GET", "/", Some("Basic YWRtaW46c2VjcmV0"), None),
            Verdict::User("admin".into())
        );
        assert!(matches!(
            a.check("GET", "/", Some("Basic YWRtaW46eA=="), None),
            Verdict::Challenge { failed: true, .. }
        ));
        assert!(matches!(
            a.check("GET", "/", Some("Basic !!!"), None),
            Verdict::Challenge { failed: true, .. }
        ));
    }

    #[test]
    fn malformed_params() {
        assert!(parse_params("a=\"unterminated").is_none());
        assert!(parse_params("a=1, a=2").is_none());
        assert!(parse_params("=x").is_none());
        assert_eq!(parse_params("a=\"x\\\"y\", b=2").unwrap()["a"], "x\"y");
        assert!(parse_params("").unwrap().is_empty());
    }
}
