//! Request bodies: corpus templates with Zipf-distributed user ids.

use std::path::Path;

use bytes::Bytes;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

/// Samples ranks 0..n with probability ∝ 1/(rank+1)^s.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 0..n {
            total += 1.0 / ((rank + 1) as f64).powf(s);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, uniform: f64) -> usize {
        self.cdf.partition_point(|&c| c < uniform).min(self.cdf.len() - 1)
    }
}

/// Loads every `*.json` template under `dir` (recursively).
pub fn templates(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut templates = Vec::new();
    for file in files {
        if let Ok(value) = serde_json::from_slice::<Value>(&std::fs::read(&file)?) {
            templates.push(value);
        }
    }
    anyhow::ensure!(!templates.is_empty(), "no JSON templates under {}", dir.display());
    Ok(templates)
}

/// Builds `count` request bodies: a random template, a fresh request id,
/// and a Zipf-popular user id as `user.buyeruid`.
pub fn bodies(templates: &[Value], count: usize, users: usize, user_prefix: &str, seed: u64) -> Vec<Bytes> {
    let zipf = Zipf::new(users.max(1), 1.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let mut request = templates[rng.random_range(0..templates.len())].clone();
            request["id"] = Value::String(format!("lt-{seed}-{i}"));
            let user = zipf.sample(rng.random::<f64>());
            let id = Value::String(format!("{user_prefix}{user:04}"));
            match request.get_mut("user").and_then(Value::as_object_mut) {
                Some(object) => {
                    object.insert("buyeruid".into(), id);
                }
                None => request["user"] = serde_json::json!({ "buyeruid": id }),
            }
            Bytes::from(request.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_prefers_low_ranks() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let samples: Vec<usize> = (0..10_000).map(|_| zipf.sample(rng.random::<f64>())).collect();
        let top = samples.iter().filter(|&&r| r < 10).count();
        assert!(top > 3000, "{top}");
        assert!(samples.iter().all(|&r| r < 1000));
    }
}
