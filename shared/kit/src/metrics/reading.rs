//! Reading one series back out of the exposition, for tests and tools: what a scraper would see.

/// One sample line: its name, its labels (unescaped, empty values left out) and its value.
#[derive(Debug, PartialEq)]
pub(crate) struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

/// The samples of an OpenMetrics or Prometheus text exposition; comments are skipped.
pub(crate) fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(sample)
}

fn sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        let (labels, used) = labels(&line[name_end + 1..])?;
        (labels, &line[name_end + 1 + used..])
    } else {
        (Vec::new(), &line[name_end..])
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `k="v",...}` and returns the labels and how many bytes it used, the `}` included.
fn labels(text: &str) -> Option<(Vec<(&str, String)>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    loop {
        match bytes.get(i)? {
            b'}' => return Some((out, i + 1)),
            b',' => i += 1,
            _ => {
                let eq = i + text[i..].find('=')?;
                let key = &text[i..eq];
                if bytes.get(eq + 1) != Some(&b'"') {
                    return None;
                }
                let mut value = String::new();
                let mut j = eq + 2;
                loop {
                    match bytes.get(j)? {
                        b'\\' => {
                            match bytes.get(j + 1)? {
                                b'n' => value.push('\n'),
                                c => value.push(char::from(*c)),
                            }
                            j += 2;
                        }
                        b'"' => break,
                        _ => {
                            let c = text[j..].chars().next()?;
                            value.push(c);
                            j += c.len_utf8();
                        }
                    }
                }
                if !value.is_empty() {
                    out.push((key, value));
                }
                i = j + 1;
            }
        }
    }
}

/// Whether a sample's labels are exactly `wanted`, in any order.
pub(crate) fn labels_are(sample: &Sample<'_>, wanted: &[(&str, &str)]) -> bool {
    let wanted: Vec<_> = wanted.iter().filter(|(_, v)| !v.is_empty()).collect();
    sample.labels.len() == wanted.len()
        && wanted
            .iter()
            .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_escaped_labels_and_values() {
        let text = "# TYPE a counter\na_total{x=\"q\\\"uo\\nte\",y=\"\"} 3\nb 1.5\n# EOF\n";
        let all: Vec<_> = samples(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "a_total");
        assert_eq!(all[0].labels, vec![("x", "q\"uo\nte".to_owned())]);
        assert_eq!(all[0].value, 3.0);
        assert!(labels_are(&all[0], &[("x", "q\"uo\nte")]));
        assert_eq!(all[1].name, "b");
        assert!(labels_are(&all[1], &[]));
        assert_eq!(all[1].value, 1.5);
    }
}
