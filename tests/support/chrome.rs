//! What every Chrome Trace Event file conc writes must satisfy: required
//! fields, threads named before use, flow arrows that pair up and go
//! forward in time, slices on a thread that nest.

use serde_json::Value;
use std::collections::HashMap;

/// Check `events` (of a run of `script`); gives the names of the flows.
pub fn validate(events: &[Value], script: &str) -> Vec<String> {
    let mut named: Vec<u64> = Vec::new();
    let mut process_named = false;
    let mut flows: HashMap<u64, (u32, u32, f64, f64)> = HashMap::new();
    let mut slices: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    let mut flow_names: Vec<String> = Vec::new();
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        let name = e["name"].as_str().expect("name");
        let tid = e["tid"].as_u64().expect("tid");
        assert!(e["pid"].as_u64().is_some(), "pid in {e}");
        if ph == "M" {
            match name {
                "thread_name" => named.push(tid),
                "process_name" => process_named = true,
                other => panic!("unknown metadata {other}"),
            }
            assert!(e["args"]["name"].as_str().is_some(), "{e}");
            continue;
        }
        let ts = e["ts"].as_f64().expect("ts");
        assert!(ts >= 0.0);
        match ph {
            "X" => {
                let dur = e["dur"].as_f64().expect("dur");
                assert!(dur >= 0.0);
                slices.entry(tid).or_default().push((ts, ts + dur));
            }
            "i" => assert_eq!(e["s"].as_str(), Some("t")),
            "s" | "f" => {
                let id = e["id"].as_u64().expect("flow id");
                let entry = flows.entry(id).or_insert((0, 0, 0.0, 0.0));
                if ph == "s" {
                    entry.0 += 1;
                    entry.2 = ts;
                    flow_names.push(name.to_string());
                } else {
                    entry.1 += 1;
                    entry.3 = ts;
                }
            }
            other => panic!("unexpected phase {other}"),
        }
        assert!(
            named.contains(&tid),
            "{script}: thread {tid} used before it is named"
        );
    }
    assert!(process_named, "{script}: no process_name");
    for (id, (s, f, from, to)) in &flows {
        assert_eq!((*s, *f), (1, 1), "{script}: flow {id} does not pair up");
        assert!(from <= to, "{script}: flow {id} goes back in time");
    }
    for (tid, mut spans) in slices {
        spans.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
        let mut open: Vec<f64> = Vec::new();
        for (start, end) in spans {
            // Microseconds to the nanosecond, summed in floating point.
            while open.last().is_some_and(|e| *e <= start + 1e-6) {
                open.pop();
            }
            if let Some(outer) = open.last() {
                assert!(
                    end <= *outer + 1e-6,
                    "{script}: slices on thread {tid} overlap without nesting"
                );
            }
            open.push(end);
        }
    }
    flow_names
}

/// The events of a trace file's text.
#[allow(dead_code)]
pub fn events_of(text: &str, script: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{script}: {e}"));
    doc["traceEvents"].as_array().cloned().expect("traceEvents")
}
