//! A decision taken, and the investigation a director asks for.

use super::*;

/// Lines, excerpt and footer of a message of this family.
pub(super) fn render(m: &Message) -> Parts {
    let job = m.job.as_str();
    let mut lines = Vec::new();
    let mut excerpt = Vec::new();
    let footer = match &m.body {
        Body::DecisionTaken { decision, by, detail } => {
            lines.push(format!("{by} decided: {decision}"));
            lines.push(detail.clone());
            None
        }
        Body::Investigate {
            owner,
            requested_by,
            incident,
            log_file,
            last_line,
        } => {
            lines.push(format!(
                "{}: please investigate {job} (asked by {requested_by}).",
                persona_tag(*owner)
            ));
            match incident {
                Some(i) => {
                    lines.push(format!("Error: {}", line(&i.text)));
                    if i.line > 0 {
                        lines.push(format!("Line: {}", i.line));
                    }
                    lines.push(format!("This is a {} error.", i.category));
                    excerpt = excerpt_lines(&i.excerpt);
                }
                None => {
                    lines.push("The run is past its maximum duration: check the log for issues.".into());
                    if let Some(l) = last_line {
                        lines.push(format!("Last log line: {}", line(l)));
                    }
                }
            }
            lines.push(format!("Log file: {}", path(log_file)));
            Some("Please investigate and provide a fix (with a CHANGES SUMMARY).".into())
        }
        _ => unreachable!("render() routes only this family here"),
    };
    Parts {
        lines,
        excerpt,
        footer,
    }
}
