//! `:help` and `:help NAME`, read from the language reference
//! (`docs/language.md`, built into the binary), so the REPL and the
//! document never disagree.

const REFERENCE: &str = include_str!("../../docs/language.md");

/// The `###` headings of one `##` chapter, in order.
fn headings(chapter: &str) -> Vec<&'static str> {
    let mut current = "";
    let mut out = Vec::new();
    for line in REFERENCE.lines() {
        if let Some(c) = line.strip_prefix("## ") {
            current = c.trim();
        } else if let Some(h) = line.strip_prefix("### ") {
            if current == chapter {
                out.push(h.trim());
            }
        }
    }
    out
}

/// The list `:help` shows after the commands.
pub fn index() -> String {
    let mut out = String::new();
    for (title, chapter) in [
        ("Statements", "Statements"),
        ("Builtins", "Builtins"),
        ("Handles", "Handles"),
        ("Values", "Values"),
    ] {
        out.push_str(&format!(
            "{title}:\n{}\n",
            wrap(&headings(chapter).join(", "), 76)
        ));
    }
    out.push_str("`:help NAME` shows one entry (e.g. `:help spawn`, `:help queue`).");
    out
}

/// Every entry whose heading is NAME or starts with the word NAME.
pub fn entry(name: &str) -> Option<String> {
    let name = name.trim().trim_start_matches('.').to_lowercase();
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in REFERENCE.lines() {
        let starts_section = line.starts_with("## ") || line.starts_with("### ");
        if starts_section {
            if let Some(done) = current.take() {
                found.push(done);
            }
        }
        if let Some(h) = line.strip_prefix("### ") {
            let heading = h.trim().to_lowercase();
            let first = heading.split_whitespace().next().unwrap_or("");
            if heading == name || first == name {
                current = Some(format!("{}\n", h.trim()));
            }
        } else if let Some(text) = current.as_mut() {
            if !line.starts_with("```") {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    found.extend(current);
    (!found.is_empty()).then(|| found.join("\n").trim_end().to_string())
}

fn wrap(text: &str, width: usize) -> String {
    let mut lines = vec![String::from(" ")];
    for word in text.split(' ') {
        let line = lines.last_mut().map(|l| l.len()).unwrap_or(0);
        if line + word.len() + 1 > width {
            lines.push(String::from(" "));
        }
        if let Some(last) = lines.last_mut() {
            last.push(' ');
            last.push_str(word);
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lists_statements_and_builtins() {
        let text = index();
        assert!(text.contains("spawn") && text.contains("select"), "{text}");
        assert!(
            text.contains("thread_pool") && text.contains("randint"),
            "{text}"
        );
    }

    #[test]
    fn an_entry_is_found_by_its_first_word() {
        let spawn = entry("spawn").unwrap_or_default();
        assert!(spawn.starts_with("spawn\n"), "{spawn}");
        assert!(spawn.contains("named"), "{spawn}");
        // `lock` is a statement, a builtin and a handle kind.
        let lock = entry("LOCK").unwrap_or_default();
        assert!(
            lock.contains("lock (statement)") && lock.contains("lock handle"),
            "{lock}"
        );
        assert_eq!(entry("no_such_thing"), None);
    }
}
