//! Container IDs from cgroup paths: which runtime put a process where, under which pod.
//! Pure functions over the text of `/proc/<pid>/cgroup`.
//!
//! Invariant: only 64-hex IDs in a runtime's own naming are container IDs. Other hex strings
//! (host services here sit in `/process_api/<32 hex>`) and the runtimes' helper scopes
//! (`libpod-conmon-…`, `crio-conmon-…`, `*.mount`) are not.

use crate::procfs::parse_cgroup;

/// What a cgroup path says about a process's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupId {
    pub runtime: &'static str,
    pub id: String,
    /// The podman pod ID or Kubernetes pod UID, when the path shows one.
    pub pod_id: Option<String>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Recognises one path segment as a container: `(runtime, id)`.
fn segment_id(seg: &str) -> Option<(&'static str, &str)> {
    if seg.ends_with(".mount")
        || seg.starts_with("libpod-conmon-")
        || seg.starts_with("crio-conmon-")
    {
        return None;
    }
    let seg_no_scope = seg.strip_suffix(".scope").unwrap_or(seg);
    // `libpod-payload-` (podman `--cgroups=split`) before `libpod-`, whose suffix it is not.
    const PREFIXES: [(&str, &str); 5] = [
        ("libpod-payload-", "podman"),
        ("libpod-", "podman"),
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
    ];
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = seg_no_scope.strip_prefix(prefix) {
            if is_hex64(id) {
                return Some((runtime, id));
            }
        }
    }
    // cgroupfs kubelet with containerd: `…/kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`
    if let Some((_, id)) = seg.rsplit_once(":cri-containerd:") {
        if is_hex64(id) {
            return Some(("containerd", id));
        }
    }
    None
}

/// The pod a segment names: podman's `machine-libpod_pod_<id>.slice` or `libpod_pod_<id>`,
/// Kubernetes' `pod<uid>` or `kubepods-…-pod<uid_with_underscores>.slice`. A Kubernetes pod
/// UID is a UUID, or for a static pod the 32-hex hash of its manifest (what the kubelet
/// puts in the `kubernetes.io/config.hash` annotation and in the pod's cgroup name).
/// The containerd cgroupfs form `kubepods-…-pod<uid>.slice:cri-containerd:<id>` names the pod
/// before its first `:`.
fn segment_pod(seg: &str) -> Option<String> {
    let seg = seg.split(':').next().unwrap_or(seg);
    let seg = seg.strip_suffix(".slice").unwrap_or(seg);
    if let Some(i) = seg.find("libpod_pod_") {
        let id = &seg[i + "libpod_pod_".len()..];
        return is_hex64(id).then(|| id.to_string());
    }
    let uid = seg
        .rsplit_once("-pod")
        .map(|(_, u)| u)
        .or_else(|| seg.strip_prefix("pod"))?;
    let uid = uid.replace('_', "-");
    let is_uid = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let is_hash = uid.len() == 32 && uid.bytes().all(|b| b.is_ascii_hexdigit());
    (is_uid || is_hash).then_some(uid)
}

/// The container a cgroup path names, if any.
///
/// Inside a private cgroup namespace (a container's, rooted at its own cgroup) the paths of
/// the processes outside it start with `/..`: a neighbour is `/../<name>` and the names above
/// the namespace's root are hidden. A bare 64-hex name is then taken as a container ID when
/// it sits right below the hidden part or under a pod's segment: cgroupfs runtimes name a
/// container's cgroup by its bare ID (`/docker/<id>`, `/kubepods/…/pod<uid>/<id>`), and from
/// inside a sibling the parent that said which runtime is among the hidden names.
pub fn path_id(path: &str) -> Option<CgroupId> {
    let all: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Only a leading run of `..` is the namespace's view of hidden ancestors.
    let hidden = all.iter().take_while(|s| **s == "..").count();
    let segs: Vec<&str> = all[hidden..]
        .iter()
        .copied()
        .filter(|s| *s != "..")
        .collect();
    for (i, seg) in segs.iter().enumerate().rev() {
        let found = segment_id(seg)
            .map(|(rt, id)| (rt, id.to_string()))
            .or_else(|| {
                // `/docker/<id>` and Kubernetes cgroupfs `/kubepods/…/pod<uid>/<id>`.
                let parent = if i > 0 { segs[i - 1] } else { "" };
                if !is_hex64(seg) {
                    None
                } else if parent == "docker" {
                    Some(("docker", seg.to_string()))
                } else if (segment_pod(parent).is_some()
                    && (hidden > 0 || path.contains("kubepods")))
                    || (i == 0 && hidden > 0)
                {
                    Some(("unknown", seg.to_string()))
                } else {
                    None
                }
            });
        if let Some((runtime, id)) = found {
            let pod_id = segs[..=i]
                .iter()
                .rev()
                .find_map(|s| segment_pod(s))
                .or_else(|| {
                    // podman cgroupfs pods: `/libpod_parent/<pod id>/libpod-<id>` (from a
                    // private cgroup namespace `/../<pod id>/libpod-<id>`, the parent hidden).
                    let parent = segs.get(i.checked_sub(1)?)?;
                    let grand = i.checked_sub(2).and_then(|g| segs.get(g));
                    let under_parent = grand == Some(&"libpod_parent") || (i == 1 && hidden > 0);
                    (runtime == "podman" && under_parent && is_hex64(parent))
                        .then(|| parent.to_string())
                });
            return Some(CgroupId {
                runtime,
                id,
                pod_id,
            });
        }
    }
    None
}

/// The container named by a whole `/proc/<pid>/cgroup` file: the first line that names a
/// runtime wins (on a hybrid host some v1 controllers may still show `/`).
pub fn container_id(cgroup_file: &str) -> Option<CgroupId> {
    parse_cgroup(cgroup_file)
        .iter()
        .find_map(|l| path_id(&l.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312233445566778899a";
    const POD: &str = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999";

    fn id(path: &str) -> Option<(&'static str, String, Option<String>)> {
        path_id(path).map(|c| (c.runtime, c.id, c.pod_id))
    }

    #[test]
    fn podman_layouts() {
        let want = Some(("podman", ID.to_string(), None));
        assert_eq!(id(&format!("/machine.slice/libpod-{ID}.scope")), want);
        assert_eq!(
            id(&format!("/machine.slice/libpod-{ID}.scope/container")),
            want
        );
        assert_eq!(id(&format!("/libpod_parent/libpod-{ID}")), want);
        assert_eq!(
            id(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            want
        );
        // In a pod: systemd and cgroupfs managers.
        let in_pod = Some(("podman", ID.to_string(), Some(POD.to_string())));
        assert_eq!(
            id(&format!(
                "/machine.slice/machine-libpod_pod_{POD}.slice/libpod-{ID}.scope"
            )),
            in_pod
        );
        assert_eq!(id(&format!("/libpod_parent/{POD}/libpod-{ID}")), in_pod);
        // Helpers and mounts are not containers.
        assert_eq!(
            id(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(id(&format!("/machine.slice/libpod-{ID}.scope.mount")), None);
    }

    #[test]
    fn docker_containerd_crio_kubernetes() {
        assert_eq!(
            id(&format!("/system.slice/docker-{ID}.scope")).unwrap().0,
            "docker"
        );
        assert_eq!(id(&format!("/docker/{ID}")).unwrap().0, "docker");
        let k = id(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1f1d52_0f6e_4a57_9d3b_2c0d3e4f5a6b.slice/cri-containerd-{ID}.scope"
        ))
        .unwrap();
        assert_eq!(
            k,
            (
                "containerd",
                ID.to_string(),
                Some("6b1f1d52-0f6e-4a57-9d3b-2c0d3e4f5a6b".to_string())
            )
        );
        let k = id(&format!("/kubepods-besteffort-pod6b1f1d52_0f6e_4a57_9d3b_2c0d3e4f5a6b.slice:cri-containerd:{ID}")).unwrap();
        assert_eq!((k.0, k.1.as_str()), ("containerd", ID));
        let c = id(&format!("/kubepods.slice/kubepods-pod6b1f1d52_0f6e_4a57_9d3b_2c0d3e4f5a6b.slice/crio-{ID}.scope")).unwrap();
        assert_eq!(c.0, "cri-o");
        assert_eq!(id(&format!("/kubepods.slice/crio-conmon-{ID}.scope")), None);
        let k = id(&format!(
            "/kubepods/burstable/pod6b1f1d52-0f6e-4a57-9d3b-2c0d3e4f5a6b/{ID}"
        ))
        .unwrap();
        assert_eq!(
            k,
            (
                "unknown",
                ID.to_string(),
                Some("6b1f1d52-0f6e-4a57-9d3b-2c0d3e4f5a6b".to_string())
            )
        );
    }

    #[test]
    fn inside_a_cgroup_namespace_and_not_ids() {
        assert_eq!(id(&format!("/../../libpod-{ID}.scope")).unwrap().1, ID);
        assert_eq!(id(&format!("/../docker-{ID}.scope/init")).unwrap().1, ID);
        assert_eq!(id("/process_api/1c65127b4730c87599bda8b4f50ab25b"), None);
        assert_eq!(id(&format!("/some/{ID}")), None);
        assert_eq!(id("/"), None);
        assert_eq!(id("/libpod-xyz.scope"), None);
    }

    #[test]
    fn static_pods_split_cgroups_and_containerd_pods() {
        // A static pod's UID is the 32-hex hash of its manifest.
        let hash = "6f3b9c1a0d2e4f5a6b7c8d9e0f1a2b3c";
        let k = id(&format!("/kubepods/burstable/pod{hash}/{ID}")).unwrap();
        assert_eq!(k, ("unknown", ID.to_string(), Some(hash.to_string())));
        let k = id(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/cri-containerd-{ID}.scope"
        ))
        .unwrap();
        assert_eq!(k, ("containerd", ID.to_string(), Some(hash.to_string())));
        let k = id(&format!(
            "/kubepods-besteffort-pod{hash}.slice:cri-containerd:{ID}"
        ))
        .unwrap();
        assert_eq!(k, ("containerd", ID.to_string(), Some(hash.to_string())));
        let k = id(&format!(
            "/system.slice/containerd.service/kubepods-besteffort-pod6b1f1d52_0f6e_4a57_9d3b_2c0d3e4f5a6b.slice:cri-containerd:{ID}"
        ))
        .unwrap();
        assert_eq!(k.2.as_deref(), Some("6b1f1d52-0f6e-4a57-9d3b-2c0d3e4f5a6b"));
        // podman --cgroups=split
        assert_eq!(
            id(&format!("/user.slice/session-3.scope/libpod-payload-{ID}")),
            Some(("podman", ID.to_string(), None))
        );
        assert_eq!(
            id(&format!(
                "/machine.slice/libpod-{ID}.scope/libpod-payload-{ID}"
            )),
            Some(("podman", ID.to_string(), None))
        );
        // 32 hex is a pod's hash only after `pod`: host services' cgroups are not pods.
        assert_eq!(id(&format!("/process_api/{hash}/{ID}")), None);
    }

    #[test]
    fn neighbours_seen_from_a_private_cgroup_namespace() {
        // cgroupfs docker and Kubernetes: the parent that names the runtime is hidden.
        assert_eq!(
            id(&format!("/../{ID}")),
            Some(("unknown", ID.to_string(), None))
        );
        let hash = "6f3b9c1a0d2e4f5a6b7c8d9e0f1a2b3c";
        assert_eq!(
            id(&format!("/../../pod{hash}/{ID}")),
            Some(("unknown", ID.to_string(), Some(hash.to_string())))
        );
        assert_eq!(id(&format!("/../libpod-{ID}")).unwrap().0, "podman");
        // A podman pod's container seen from outside the pod (cgroupfs).
        assert_eq!(
            id(&format!("/../{POD}/libpod-{ID}")),
            Some(("podman", ID.to_string(), Some(POD.to_string())))
        );
        assert_eq!(id(&format!("/x/{POD}/libpod-{ID}")).unwrap().2, None);
        // A bare ID deeper down, not under a pod, is no container (only below `..`).
        assert_eq!(id(&format!("/../x/{ID}")), None);
        assert_eq!(id(&format!("/{ID}")), None);
        assert_eq!(id("/../"), None);
    }

    #[test]
    fn whole_files() {
        let f = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proc/cgroup-hybrid"
        ))
        .unwrap();
        assert_eq!(container_id(&f).unwrap().id, ID);
        // Only the v1 memory line names a runtime: it still wins over the others.
        let hybrid = format!("2:cpu:/\n1:memory:/docker/{ID}\n0::/\n");
        assert_eq!(container_id(&hybrid).unwrap().runtime, "docker");
        assert_eq!(
            container_id("4:memory:/process_api/1c65127b4730c87599bda8b4f50ab25b\n0::/\n"),
            None
        );
    }
}
