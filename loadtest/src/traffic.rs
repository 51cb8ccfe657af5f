//! Request bodies: corpus templates or synthetic requests, with
//! Zipf-distributed user ids (the audience generator's ids).

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
pub fn bodies(
    templates: &[Value],
    traffic: Traffic,
    count: usize,
    users: usize,
    user_prefix: &str,
    seed: u64,
) -> Vec<Bytes> {
    let zipf = Zipf::new(users.max(1), 1.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let mut request = template(templates, traffic, &mut rng);
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

const SIZES: [(u32, u32); 6] = [(300, 250), (320, 50), (728, 90), (300, 600), (160, 600), (970, 250)];
const COUNTRIES: [&str; 6] = ["USA", "GBR", "DEU", "FRA", "JPN", "BRA"];

/// A synthetic request template: banner, video or native impressions (one
/// to three), site or app, floors from 0 to 2.00 USD, sizes, geo (country
/// and coordinates), a device, and `tmax`. User ids are set by [`bodies`].
pub fn synthetic(rng: &mut impl RngExt) -> Value {
    let imps: Vec<Value> = (0..rng.random_range(1..=3))
        .map(|i| {
            let floor = rng.random_range(0..=200) as f64 / 100.0;
            let mut imp = serde_json::json!({"id": (i + 1).to_string(), "bidfloor": floor, "bidfloorcur": "USD"});
            match rng.random_range(0..10) {
                0..=5 => {
                    let (w, h) = SIZES[rng.random_range(0..SIZES.len())];
                    let (w2, h2) = SIZES[rng.random_range(0..SIZES.len())];
                    imp["banner"] = serde_json::json!({"w": w, "h": h, "format": [{"w": w, "h": h}, {"w": w2, "h": h2}]});
                }
                6..=8 => {
                    imp["video"] = serde_json::json!({
                        "mimes": ["video/mp4"], "minduration": 5, "maxduration": 30,
                        "protocols": [2, 3, 5, 6], "w": 640, "h": 360
                    })
                }
                _ => {
                    imp["native"] = serde_json::json!({
                        "request": "{\"ver\":\"1.2\",\"assets\":[{\"id\":1,\"required\":1,\"title\":{\"len\":90}},{\"id\":2,\"required\":1,\"img\":{\"type\":3,\"w\":1200,\"h\":627}}]}",
                        "ver": "1.2"
                    })
                }
            }
            imp
        })
        .collect();
    let country = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
    let mut request = serde_json::json!({
        "imp": imps,
        "at": if rng.random_range(0..4) == 0 { 2 } else { 1 },
        "tmax": rng.random_range(100..=300),
        "cur": ["USD"],
        "device": {
            "ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
            "ip": format!("203.0.{}.{}", rng.random_range(0..=255), rng.random_range(1..=254)),
            "devicetype": 4, "os": "iOS", "connectiontype": 2,
            "geo": {"country": country, "lat": rng.random_range(-60.0..70.0), "lon": rng.random_range(-170.0..170.0)}
        },
        "regs": {"coppa": 0}
    });
    if rng.random_range(0..2) == 0 {
        request["site"] = serde_json::json!({"id": "s1", "domain": "news.example", "page": "https://news.example/a", "cat": ["IAB12"]});
    } else {
        request["app"] = serde_json::json!({"id": "a1", "bundle": "com.example.game", "cat": ["IAB9"]});
    }
    request
}

/// What the load test sends: corpus templates, synthetic requests, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Traffic {
    Corpus,
    Synthetic,
    Mixed,
}

/// The template for body `i`.
pub fn template(templates: &[Value], traffic: Traffic, rng: &mut impl RngExt) -> Value {
    let synthetic = match traffic {
        Traffic::Corpus => false,
        Traffic::Synthetic => true,
        Traffic::Mixed => rng.random_range(0..2) == 0,
    };
    if synthetic {
        self::synthetic(rng)
    } else {
        templates[rng.random_range(0..templates.len())].clone()
    }
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
