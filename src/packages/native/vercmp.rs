//! Version comparison and dependency ranges as librpm does them: `rpmvercmp` (rpm's
//! `lib/rpmvercmp.c`: alternating digit and letter segments, `~` sorts before anything,
//! `^` after the end but before anything else) and `rpmdsCompare` (`lib/rpmds.c`: two
//! `name op [epoch:]version[-release]` ranges overlap; a side without a version matches
//! anything; a missing release matches any release; a missing epoch is 0).
//!
//! Invariant: agrees with the real rpm (`rpm.vercmp` in rpm's Lua) on every case the tests
//! compare; note that the `rpm-version` crate's `satisfies` says no to `foo = 1.0` against
//! `1.0-1`, where librpm says yes.

use std::cmp::Ordering;

/// `RPMSENSE_LESS`, `GREATER`, `EQUAL` (rpm's `rpmds.h`).
pub const LESS: u32 = 1 << 1;
pub const GREATER: u32 = 1 << 2;
pub const EQUAL: u32 = 1 << 3;
pub const SENSEMASK: u32 = LESS | GREATER | EQUAL;

/// rpm's `rpmvercmp(a, b)`.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        // `~` sorts before everything, even the end.
        let (ta, tb) = (a.get(i) == Some(&b'~'), b.get(j) == Some(&b'~'));
        if ta || tb {
            if !(ta && tb) {
                return if ta {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` sorts after the end, before anything else.
        let (ca, cb) = (a.get(i) == Some(&b'^'), b.get(j) == Some(&b'^'));
        if ca || cb {
            if i >= a.len() {
                return Ordering::Less;
            }
            if j >= b.len() {
                return Ordering::Greater;
            }
            if !(ca && cb) {
                return if ca {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let seg = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (sa, ea) = seg(a, i);
        let (sb, eb) = seg(b, j);
        if sb == eb {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut x, mut y) = (&a[sa..ea], &b[sb..eb]);
        if numeric {
            while x.first() == Some(&b'0') {
                x = &x[1..];
            }
            while y.first() == Some(&b'0') {
                y = &y[1..];
            }
            match x.len().cmp(&y.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match x.cmp(y) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ea;
        j = eb;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// An `[epoch:]version[-release]` as a dependency carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evr<'a> {
    pub epoch: Option<u32>,
    pub version: &'a str,
    pub release: Option<&'a str>,
}

/// Splits `[epoch:]version[-release]` as rpm's `rpmdsParseEVR` does.
pub fn parse_evr(s: &str) -> Evr<'_> {
    let (epoch, rest) = match s.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().ok(), r)
        }
        _ => (None, s),
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    Evr {
        epoch,
        version,
        release,
    }
}

/// rpm's `rpmdsCompareEVR`: epochs (missing is 0), versions, and releases only when both
/// sides have one.
pub fn compare_evr(a: &Evr, b: &Evr) -> Ordering {
    a.epoch
        .unwrap_or(0)
        .cmp(&b.epoch.unwrap_or(0))
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => rpmvercmp(x, y),
            _ => Ordering::Equal,
        })
}

/// Whether `name a_flags a_evr` and `name b_flags b_evr` overlap (rpm's `rpmdsCompare`,
/// names already equal): a side without a comparison matches anything.
pub fn ranges_overlap(a_flags: u32, a_evr: &str, b_flags: u32, b_evr: &str) -> bool {
    let (af, bf) = (a_flags & SENSEMASK, b_flags & SENSEMASK);
    if af == 0 || bf == 0 || a_evr.is_empty() || b_evr.is_empty() {
        return true;
    }
    let sense = compare_evr(&parse_evr(a_evr), &parse_evr(b_evr));
    match sense {
        Ordering::Less => af & GREATER != 0 || bf & LESS != 0,
        Ordering::Greater => af & LESS != 0 || bf & GREATER != 0,
        Ordering::Equal => {
            (af & EQUAL != 0 && bf & EQUAL != 0)
                || (af & LESS != 0 && bf & LESS != 0)
                || (af & GREATER != 0 && bf & GREATER != 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rpmvercmp_cases_of_rpms_own_test_suite() {
        // From rpm's tests/rpmvercmp.at, each both ways.
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0.1a", Less),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("xyz.4", "8", Less),
            ("1b", "1a", Greater),
            ("1.0010", "1.9", Greater),
            ("1.05", "1.5", Equal),
            ("1.0", "1", Greater),
            ("2.50", "2.5", Greater),
            ("fc4", "fc.4", Equal),
            ("FC5", "fc4", Less),
            ("2a", "2.0", Less),
            ("1.0", "1.fc4", Greater),
            ("3.0.0_fc", "3.0.0.fc", Equal),
            ("1++", "1_", Equal),
            ("+", "_", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.01", Less),
            ("1.0^20160101", "1.0.1", Less),
            ("1.0^20160101^git1", "1.0^20160101", Greater),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("1.0^git1~pre", "1.0^git1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn ranges_as_librpm_compares_them() {
        // foo = 1.0 is satisfied by foo = 1.0-1 (the release is ignored when one side
        // has none), unlike rpm-version's `satisfies`.
        assert!(ranges_overlap(EQUAL, "1.0", EQUAL, "1.0-1"));
        assert!(ranges_overlap(GREATER | EQUAL, "2", EQUAL, "2.1-3"));
        assert!(!ranges_overlap(GREATER | EQUAL, "2", EQUAL, "1.9-3"));
        assert!(!ranges_overlap(EQUAL, "1:1.0", EQUAL, "1.0-1"));
        assert!(ranges_overlap(LESS, "2", LESS, "1"));
        assert!(ranges_overlap(0, "", EQUAL, "7"));
        assert!(!ranges_overlap(LESS, "1.0", EQUAL, "1.0-1"));
        assert!(ranges_overlap(LESS | EQUAL, "1.0", EQUAL, "1.0-1"));
        assert!(!ranges_overlap(GREATER, "1.0~rc1", EQUAL, "1.0~beta"));
        assert_eq!(
            parse_evr("3:1.2-4.el9"),
            Evr {
                epoch: Some(3),
                version: "1.2",
                release: Some("4.el9")
            }
        );
    }
}
