//! Two network namespaces joined by a veth pair, for tests that cut a link
//! under a live session (root only).

use std::process::{Child, Command};

/// Runs `ip ARGS`: its stdout, or its stderr as the error.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Namespaces `ns_a` and `ns_b` joined by `veth_a` / `veth_b`, b at `addr_b`.
/// Dropping it kills `children` and deletes both namespaces (and with them
/// the pair), whatever happened.
pub struct Net {
    pub ns_a: String,
    pub ns_b: String,
    pub veth_a: String,
    pub veth_b: String,
    pub addr_b: String,
    pub children: Vec<Child>,
}

impl Net {
    /// Names carry `tag` and this process's id, addresses `10.OCTET.x.0/24`,
    /// so tests running at once (each with its own tag and octet) never clash.
    pub fn new(tag: char, octet: u8) -> Result<Net, String> {
        let pid = std::process::id() % 100_000;
        let subnet = 16 + std::process::id() % 200;
        let net = Net {
            ns_a: format!("s{tag}n{pid}a"),
            ns_b: format!("s{tag}n{pid}b"),
            veth_a: format!("v{tag}{pid}a"),
            veth_b: format!("v{tag}{pid}b"),
            addr_b: format!("10.{octet}.{subnet}.2"),
            children: Vec::new(),
        };
        let (a_cidr, b_cidr) = (format!("10.{octet}.{subnet}.1/24"), format!("{}/24", net.addr_b));
        ip(&["netns", "add", &net.ns_a])?;
        ip(&["netns", "add", &net.ns_b])?;
        ip(&["link", "add", &net.veth_a, "netns", &net.ns_a, "type", "veth", "peer", "name", &net.veth_b, "netns", &net.ns_b])?;
        for (ns, dev, cidr) in [(&net.ns_a, &net.veth_a, &a_cidr), (&net.ns_b, &net.veth_b, &b_cidr)] {
            ip(&["-n", ns, "addr", "add", cidr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Bytes the veth end in b's namespace has received.
    pub fn rx_bytes_b(&self) -> u64 {
        let out = ip(&["-n", &self.ns_b, "-s", "link", "show", &self.veth_b]).unwrap_or_default();
        // "RX: bytes packets ..." then the numbers on the next line.
        let mut lines = out.lines();
        while let Some(l) = lines.next() {
            if l.trim_start().starts_with("RX:") {
                return lines.next().and_then(|n| n.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0);
            }
        }
        0
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting a namespace deletes the veth end in it, and so the pair.
        let _ = ip(&["netns", "del", &self.ns_a]);
        let _ = ip(&["netns", "del", &self.ns_b]);
    }
}
