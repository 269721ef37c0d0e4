//! A strict reader of the Prometheus text format (version 0.0.4) as queuectl writes it,
//! to validate `/metrics` beyond what `prometheus-parse` (which skips lines it does not
//! understand) checks: every line is a `# HELP`, a `# TYPE` or a well-formed sample of a
//! declared family; label values use only the format's escapes; histogram buckets are
//! cumulative and end with `+Inf` equal to `_count`.

use std::collections::BTreeMap;

/// A sample's labels, sorted by name.
pub(crate) type Labels = BTreeMap<String, String>;

/// Every sample, keyed by metric name and labels.
#[derive(Debug, Default)]
pub(crate) struct Samples(pub(crate) BTreeMap<(String, Labels), f64>);

impl Samples {
    /// The value of a sample, if present.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0.get(&(name.to_owned(), labels)).copied()
    }

    /// Every sample of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<(&Labels, f64)> {
        self.0
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{k="v",…}` at the start of `s`; returns the labels and the rest.
fn labels(s: &str) -> Result<(Labels, &str), String> {
    let mut out = Labels::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((out, s));
    };
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((out, after));
        }
        let (key, after) = rest.split_once("=\"").ok_or("a label without =\"")?;
        if !is_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("an unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("a raw newline in a label value".to_owned()),
                (_, c) => value.push(c),
            }
        };
        if out.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key} repeated"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A sample value or an `le` bound.
///
/// # Panics
/// If it is not a number.
pub(crate) fn parse_number(s: &str) -> f64 {
    number(s).unwrap_or_else(|e| panic!("{e}"))
}

fn number(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Parses and checks `text`; panics naming the first problem.
pub(crate) fn parse(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::default();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: String| -> ! { panic!("line {}: {why}: {line:?}\n{text}", n + 1) };
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !is_name(name) {
                fail("bad HELP name".to_owned());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (Some(name), Some(kind), None) = (parts.next(), parts.next(), parts.next()) else {
                fail("bad TYPE line".to_owned())
            };
            if !is_name(name)
                || !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
            {
                fail("bad TYPE".to_owned());
            }
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                fail("family declared twice".to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            fail("an unexpected comment or empty line".to_owned());
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if !is_name(name) {
            fail("bad metric name".to_owned());
        }
        let (labels, rest) = labels(&line[name_end..]).unwrap_or_else(|e| fail(e));
        let value = rest
            .strip_prefix(' ')
            .map(number)
            .unwrap_or_else(|| Err("no value".to_owned()))
            .unwrap_or_else(|e| fail(e));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            fail(format!("sample of undeclared family {family}"));
        }
        if samples.0.insert((name.to_owned(), labels), value).is_some() {
            fail("sample repeated".to_owned());
        }
    }
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let counts = samples.all(&format!("{family}_count"));
        for (labels, count) in counts {
            let mut buckets: Vec<(f64, f64)> = samples
                .all(&format!("{family}_bucket"))
                .into_iter()
                .filter(|(l, _)| {
                    let mut l = (*l).clone();
                    l.remove("le");
                    &l == labels
                })
                .map(|(l, v)| (number(&l["le"]).expect("le"), v))
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{labels:?}: buckets are not cumulative: {buckets:?}"
            );
            assert_eq!(
                buckets.last().copied(),
                Some((f64::INFINITY, count)),
                "{family}{labels:?}: the +Inf bucket must equal _count"
            );
            assert!(
                samples
                    .0
                    .contains_key(&(format!("{family}_sum"), labels.clone())),
                "{family}{labels:?}: no _sum"
            );
        }
    }
    samples
}
