//! Loader for the editing traces (josephg/editing-traces format, gzipped JSON).
//!
//! Files are looked up, in order, in `$WEFT_TRACES_DIR`, in the repository's
//! `tests/data/traces/` (flat or with `sequential/` and `concurrent/`
//! folders), then in `shared/traces/{sequential,concurrent}/` beside the
//! repository. Positions and lengths are Unicode code points.

use flate2::read::GzDecoder;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

/// One edit: at code point `pos`, delete `del` code points, then insert `ins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Position in Unicode code points.
    pub pos: usize,
    /// Number of code points deleted at `pos`.
    pub del: usize,
    /// Text inserted at `pos` after the deletion.
    pub ins: String,
}

/// A sequential trace: transactions applied one after another.
#[derive(Debug, Clone)]
pub struct SeqTrace {
    /// File stem, e.g. `automerge-paper`.
    pub name: String,
    /// Expected document after every transaction.
    pub end_content: String,
    /// Transactions, each a list of patches applied in order.
    pub txns: Vec<Vec<Patch>>,
}

/// One transaction of a concurrent trace.
#[derive(Debug, Clone)]
pub struct ConcTxn {
    /// Indexes of the transactions this one comes directly after.
    pub parents: Vec<usize>,
    /// The user agent (0..num_agents) that made it.
    pub agent: usize,
    /// Patches applied in order, positions relative to the parents' state.
    pub patches: Vec<Patch>,
}

/// A concurrent trace: transactions with causal parents.
#[derive(Debug, Clone)]
pub struct ConcTrace {
    /// File stem, e.g. `friendsforever`.
    pub name: String,
    /// Expected document once every transaction is merged.
    pub end_content: String,
    /// Number of user agents.
    pub num_agents: usize,
    /// Transactions in a causal (topological) order.
    pub txns: Vec<ConcTxn>,
}

/// Where a trace file is found, if anywhere.
pub fn find(kind: &str, name: &str) -> Option<PathBuf> {
    let file = format!("{name}.json.gz");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("WEFT_TRACES_DIR") {
        let d = PathBuf::from(d);
        dirs.push(d.join(kind));
        dirs.push(d);
    }
    let repo_data = manifest.join("../tests/data/traces");
    dirs.push(repo_data.join(kind));
    dirs.push(repo_data);
    dirs.push(manifest.join("../../shared/traces").join(kind));
    dirs.into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
}

fn read_json(kind: &str, name: &str) -> Value {
    let path = find(kind, name).unwrap_or_else(|| {
        panic!("trace {kind}/{name}.json.gz not found (see weft_benches::traces docs)")
    });
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut text = String::new();
    GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("cannot gunzip {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn as_usize(v: &Value, what: &str) -> usize {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what}: expected an integer, got {v}")) as usize
}

fn patches(v: &Value) -> Vec<Patch> {
    v.as_array()
        .expect("patches: array")
        .iter()
        .map(|p| {
            let p = p.as_array().expect("patch: array");
            Patch {
                pos: as_usize(&p[0], "patch position"),
                del: as_usize(&p[1], "patch delete length"),
                ins: p[2].as_str().expect("patch insert: string").to_owned(),
            }
        })
        .collect()
}

fn end_content(v: &Value) -> String {
    v["endContent"]
        .as_str()
        .expect("endContent: string")
        .to_owned()
}

/// Loads a sequential trace by name (`automerge-paper`, `seph-blog1`, ...).
pub fn sequential(name: &str) -> SeqTrace {
    let v = read_json("sequential", name);
    let txns = v["txns"]
        .as_array()
        .expect("txns: array")
        .iter()
        .map(|t| patches(&t["patches"]))
        .collect();
    SeqTrace {
        name: name.to_owned(),
        end_content: end_content(&v),
        txns,
    }
}

/// Loads a concurrent trace by name (`friendsforever`, `clownschool`, ...).
pub fn concurrent(name: &str) -> ConcTrace {
    let v = read_json("concurrent", name);
    let txns: Vec<ConcTxn> = v["txns"]
        .as_array()
        .expect("txns: array")
        .iter()
        .map(|t| ConcTxn {
            parents: t["parents"]
                .as_array()
                .expect("parents: array")
                .iter()
                .map(|p| as_usize(p, "parent"))
                .collect(),
            agent: as_usize(&t["agent"], "agent"),
            patches: patches(&t["patches"]),
        })
        .collect();
    for (i, t) in txns.iter().enumerate() {
        assert!(
            t.parents.iter().all(|&p| p < i),
            "txn {i}: parent not earlier"
        );
    }
    ConcTrace {
        name: name.to_owned(),
        end_content: end_content(&v),
        num_agents: as_usize(&v["numAgents"], "numAgents"),
        txns,
    }
}

impl SeqTrace {
    /// Number of patches in all transactions.
    pub fn patch_count(&self) -> usize {
        self.txns.iter().map(Vec::len).sum()
    }

    /// Whether every inserted character is in the Basic Multilingual Plane,
    /// so a UTF-16 offset equals a code point offset.
    pub fn is_bmp_only(&self) -> bool {
        self.txns
            .iter()
            .flatten()
            .all(|p| p.ins.chars().all(|c| c.len_utf16() == 1))
    }
}

/// How one replica of a concurrent trace moves: make a transaction locally, or
/// first receive another agent's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Agent `to` receives the update that transaction `txn` produced.
    Deliver {
        /// Receiving agent.
        to: usize,
        /// Transaction (made earlier by another agent) to deliver.
        txn: usize,
    },
    /// The transaction's agent makes transaction `txn` locally.
    Local {
        /// Transaction index.
        txn: usize,
    },
}

impl ConcTrace {
    /// A replay plan with one replica per agent: before each transaction,
    /// its agent receives exactly the missing transactions its parents have
    /// seen (in trace order, which is causal), so every local edit happens at
    /// the state the trace recorded. The last transaction transitively
    /// contains all others, so its agent ends with the merged document.
    pub fn replay_plan(&self) -> Vec<Step> {
        let n = self.num_agents;
        // seen[i]: per agent, how many of its transactions txn i includes.
        let mut seen: Vec<Vec<usize>> = Vec::with_capacity(self.txns.len());
        let mut by_agent: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut doc: Vec<Vec<usize>> = vec![vec![0; n]; n];
        let mut plan = Vec::new();
        for (i, t) in self.txns.iter().enumerate() {
            let mut need = vec![0; n];
            for &p in &t.parents {
                for (x, &y) in need.iter_mut().zip(&seen[p]) {
                    *x = (*x).max(y);
                }
            }
            let a = t.agent;
            assert_eq!(
                doc[a][a], need[a],
                "txn {i}: agent {a}'s edits are not totally ordered"
            );
            let mut missing: Vec<usize> = (0..n)
                .filter(|&b| b != a)
                .flat_map(|b| by_agent[b][doc[a][b]..need[b]].iter().copied())
                .collect();
            missing.sort_unstable();
            plan.extend(missing.into_iter().map(|txn| Step::Deliver { to: a, txn }));
            plan.push(Step::Local { txn: i });
            doc[a] = need.clone();
            by_agent[a].push(i);
            need[a] += 1;
            doc[a][a] = need[a];
            seen.push(need);
        }
        plan
    }

    /// The agent holding the merged document at the end of [`Self::replay_plan`].
    pub fn final_agent(&self) -> usize {
        self.txns.last().map_or(0, |t| t.agent)
    }
}

/// Applies patches to a `Vec<char>` (the reference model).
pub fn apply_to_chars(doc: &mut Vec<char>, patches: &[Patch]) {
    for p in patches {
        doc.drain(p.pos..p.pos + p.del);
        let at = p.pos;
        doc.splice(at..at, p.ins.chars());
    }
}
