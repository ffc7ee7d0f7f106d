//! `flowd top`: a live view of a running `flowd serve`, read from its operations listener
//! (`--metrics`): the busiest processes and the fullest edges, refreshed every interval.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Context;

/// How many rows each table shows.
const ROWS: usize = 10;

/// One sample of a scrape: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Shows the view of the operations listener at `address` every `interval`, or once.
///
/// # Errors
///
/// When the listener cannot be reached or answers with something that is not metrics.
pub(super) fn top(address: &str, interval: Duration, once: bool) -> anyhow::Result<()> {
    let address = address.trim_start_matches("http://").trim_end_matches('/');
    let mut last: Option<(Instant, Vec<Sample>)> = None;
    loop {
        let text = scrape(address)?;
        let now = Instant::now();
        let samples = parse(&text);
        let view = render(address, &samples, last.as_ref().map(|(t, s)| (now - *t, s)));
        let mut out = std::io::stdout().lock();
        if !once && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            // Clear the screen and go home: the view replaces the last.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let written = out.write_all(view.as_bytes()).and_then(|()| out.flush());
        if written.is_err() || once {
            return Ok(());
        }
        drop(out);
        last = Some((now, samples));
        std::thread::sleep(interval);
    }
}

/// `GET /metrics` from `address`.
fn scrape(address: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address)
        .with_context(|| format!("cannot reach {address}: is `flowd serve --metrics` there?"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply);
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .with_context(|| format!("{address} did not answer in HTTP"))?;
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!(
            "{address} answered {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(body.to_string())
}

/// The samples of a Prometheus text scrape (comments and malformed lines skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_string(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}')?.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The view: runtime figures, the processes with the most IPs out (per second since the
/// last scrape, if there was one), and the fullest edges.
fn render(address: &str, samples: &[Sample], before: Option<(Duration, &Vec<Sample>)>) -> String {
    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| s.value)
    };
    let mut view = format!(
        "flowd top — {address}: {} networks running, {} clients\n\n",
        value("flowd_networks_running"),
        value("flowd_clients"),
    );
    // IPs out of each process: the sum over the edges it sends on.
    let outgoing = |samples: &[Sample]| -> BTreeMap<(String, String), f64> {
        let mut sums = BTreeMap::new();
        for sample in samples.iter().filter(|s| s.name == "flowd_edge_ips_total") {
            let process = sample.label("src").rsplit_once('.').map_or("", |(p, _)| p);
            *sums
                .entry((sample.label("graph").to_string(), process.to_string()))
                .or_insert(0.0) += sample.value;
        }
        sums
    };
    let now = outgoing(samples);
    let earlier = before.map(|(elapsed, samples)| (elapsed, outgoing(samples)));
    let states: BTreeMap<(String, String), (String, String)> = samples
        .iter()
        .filter(|s| s.name == "flowd_process_state" && s.value == 1.0)
        .map(|s| {
            (
                (s.label("graph").to_string(), s.label("node").to_string()),
                (
                    s.label("component").to_string(),
                    s.label("state").to_string(),
                ),
            )
        })
        .collect();
    let mut busiest: Vec<(f64, f64, &(String, String))> = now
        .iter()
        .map(|(key, total)| {
            let rate = earlier.as_ref().map_or(0.0, |(elapsed, earlier)| {
                let before = earlier.get(key).copied().unwrap_or(0.0);
                (total - before).max(0.0) / elapsed.as_secs_f64().max(1e-9)
            });
            (rate, *total, key)
        })
        .collect();
    busiest.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    view.push_str(&format!(
        "{:<16} {:<20} {:<20} {:<8} {:>12} {:>14}\n",
        "GRAPH", "PROCESS", "COMPONENT", "STATE", "IPS/S OUT", "IPS OUT"
    ));
    for (rate, total, (graph, node)) in busiest.iter().take(ROWS) {
        let (component, state) = states
            .get(&(graph.clone(), node.clone()))
            .cloned()
            .unwrap_or_default();
        view.push_str(&format!(
            "{graph:<16} {node:<20} {component:<20} {state:<8} {rate:>12.0} {total:>14.0}\n"
        ));
    }
    let capacity: BTreeMap<(&str, &str, &str), f64> = samples
        .iter()
        .filter(|s| s.name == "flowd_edge_capacity_batches")
        .map(|s| ((s.label("graph"), s.label("src"), s.label("tgt")), s.value))
        .collect();
    let mut fullest: Vec<(f64, &Sample)> = samples
        .iter()
        .filter(|s| s.name == "flowd_edge_queued_batches")
        .map(|s| {
            let of = capacity
                .get(&(s.label("graph"), s.label("src"), s.label("tgt")))
                .copied()
                .unwrap_or(f64::INFINITY);
            (s.value / of.max(1.0), s)
        })
        .collect();
    fullest.sort_by(|a, b| b.0.total_cmp(&a.0));
    view.push_str(&format!("\n{:<16} {:<40} {:>6}\n", "GRAPH", "EDGE", "FILL"));
    for (fill, sample) in fullest.iter().take(ROWS) {
        let edge = format!("{} -> {}", sample.label("src"), sample.label("tgt"));
        view.push_str(&format!(
            "{:<16} {edge:<40} {:>5.0}%\n",
            sample.label("graph"),
            fill * 100.0
        ));
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_reads_back_with_escaped_labels() {
        let samples =
            parse("# HELP x y\nflowd_clients 2\nm{graph=\"a\\\"b\",node=\"n,1\"} 3.5\nbad line\n");
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].name, "flowd_clients");
        assert_eq!(samples[1].label("graph"), "a\"b");
        assert_eq!(samples[1].label("node"), "n,1");
        assert_eq!(samples[1].value, 3.5);
    }

    #[test]
    fn the_view_puts_the_busiest_process_and_the_fullest_edge_first() {
        let text = "flowd_networks_running 1\n\
            flowd_edge_ips_total{graph=\"g\",src=\"a.out\",tgt=\"b.in\"} 10\n\
            flowd_edge_ips_total{graph=\"g\",src=\"b.out\",tgt=\"c.in\"} 500\n\
            flowd_edge_queued_batches{graph=\"g\",src=\"a.out\",tgt=\"b.in\"} 4\n\
            flowd_edge_capacity_batches{graph=\"g\",src=\"a.out\",tgt=\"b.in\"} 4\n\
            flowd_edge_queued_batches{graph=\"g\",src=\"b.out\",tgt=\"c.in\"} 0\n\
            flowd_edge_capacity_batches{graph=\"g\",src=\"b.out\",tgt=\"c.in\"} 4\n\
            flowd_process_state{graph=\"g\",node=\"b\",component=\"core/Repeat\",state=\"running\"} 1\n";
        let view = render("here", &parse(text), None);
        let lines: Vec<&str> = view.lines().collect();
        assert!(
            lines[3].starts_with("g") && lines[3].contains(" b "),
            "{view}"
        );
        assert!(
            lines[3].contains("core/Repeat") && lines[3].contains("running"),
            "{view}"
        );
        let edges = lines.iter().position(|l| l.contains("EDGE")).unwrap_or(0);
        assert!(lines[edges + 1].contains("a.out -> b.in"), "{view}");
        assert!(lines[edges + 1].ends_with("100%"), "{view}");
    }
}
