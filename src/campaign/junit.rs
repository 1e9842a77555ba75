//! JUnit XML of a campaign: one test case per seed, a failure per violation or error, a skip per
//! inconclusive seed, for CI dashboards.

use std::fmt::Write as _;
use std::time::Duration;

use super::{SeedResult, SeedStatus};

pub fn junit_xml(id: &str, results: &[SeedResult], wall: Duration) -> String {
    let failures = results.iter().filter(|r| r.status.is_failure()).count();
    let skipped = results
        .iter()
        .filter(|r| r.status == SeedStatus::Inconclusive)
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        escape_xml(id),
        results.len(),
        wall.as_secs_f64()
    );
    for result in results {
        let _ = write!(
            xml,
            "  <testcase classname=\"{}\" name=\"seed-{}\" time=\"{:.3}\"",
            escape_xml(id),
            result.seed,
            result.wall_ms as f64 / 1000.0
        );
        match result.status {
            SeedStatus::Ok => xml.push_str("/>\n"),
            SeedStatus::Inconclusive => {
                xml.push_str("><skipped message=\"checker budget exhausted\"/></testcase>\n")
            }
            SeedStatus::Violation | SeedStatus::Error => {
                let message = format!(
                    "{} {}",
                    result.status.as_str(),
                    result.properties.join(", ")
                );
                let body = [
                    result.replay.as_deref().unwrap_or(""),
                    result.error.as_deref().unwrap_or(""),
                ]
                .join("\n");
                let _ = writeln!(
                    xml,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    escape_xml(&message),
                    escape_xml(body.trim())
                );
            }
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let result = SeedResult {
            seed: 4,
            status: SeedStatus::Violation,
            properties: vec!["linearizability".into()],
            ops: 1,
            simulated_ms: 1,
            wall_ms: 1,
            report_dir: None,
            replay: Some("kvsim replay <dir>".into()),
            error: None,
        };
        let xml = junit_xml("c&d", &[result], Duration::from_secs(1));
        assert!(
            xml.contains("failures=\"1\"")
                && xml.contains("c&amp;d")
                && xml.contains("&lt;dir&gt;"),
            "{xml}"
        );
    }
}
