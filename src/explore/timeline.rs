//! `--timeline FILE.html`: a run's trace drawn as swim lanes in one
//! self-contained page (no network, no other file): a lane per thread
//! grouped by process, running / blocked / sleeping slices, arrows for the
//! flows, the source line on hover, zoom and pan. The page reads the same
//! Chrome Trace Event JSON that `--trace` writes, embedded in it.

const PAGE: &str = include_str!("timeline.html");

/// The page for the trace `json` of a run of `title` (the script's name).
pub fn html(json: &str, title: &str) -> String {
    let title = escape_html(title);
    // Inside a <script> element nothing may read as a closing tag: JSON
    // has `<` only in strings, where \u003c means the same.
    let json = json.replace('<', "\\u003c");
    match PAGE.split_once("@TRACE@") {
        Some((head, tail)) => format!(
            "{}{}{}",
            head.replace("@TITLE@", &title),
            json,
            tail.replace("@TITLE@", &title)
        ),
        None => String::new(),
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_cannot_end_the_script_element() {
        let page = html(r#"{"traceEvents":[{"name":"</script><b>"}]}"#, "a<b>.conc");
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the page's own two"
        );
        assert!(page.contains("\\u003c/script>\\u003cb>"));
        assert!(page.contains("conc timeline: a&lt;b&gt;.conc"));
        assert!(!page.contains("@TITLE@") && !page.contains("@TRACE@"));
    }
}
