//! `:sched manual`: the user is the scheduler. Wherever more than one
//! thread can go, the REPL lists them with the operation each is about to
//! perform and asks which one takes the next step (`:step [N|NAME]`), or
//! lets the entry run to its end (`:run`).

use crate::explore::{op_word, Texts};
use crate::runtime::engine::controlled::strategy::{Choice, Manual};
use crate::span::SourceMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const HELP: &str = "\
  Enter, :step   the thread marked > takes the next step
  :step N        thread N of the list (or :step NAME) does
  :run           run the rest of this entry without asking
  :help          this text";

/// The strategy for `:sched manual`. `free` is set by `:run` and cleared
/// by the REPL before each entry.
pub fn manual(sources: SourceMap, free: Arc<AtomicBool>) -> Manual {
    Manual::new(move |c| {
        if free.load(Ordering::Relaxed) {
            return default_pick(c);
        }
        let texts = Texts::of("repl", &sources);
        print!("{}", menu(c, &texts));
        loop {
            print!("step> ");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            // End of input: nobody is left to ask.
            if !matches!(std::io::stdin().lock().read_line(&mut line), Ok(n) if n > 0) {
                free.store(true, Ordering::Relaxed);
                return default_pick(c);
            }
            match answer(line.trim(), c) {
                Ok(Some(i)) => return i,
                Ok(None) => {
                    free.store(true, Ordering::Relaxed);
                    return default_pick(c);
                }
                Err(say) => println!("{say}"),
            }
        }
    })
}

/// The thread that ran last if it can go on, else the first.
fn default_pick(c: &Choice) -> usize {
    c.current_index().unwrap_or(0)
}

/// One line per runnable thread: its number, name, next operation and
/// where it is.
fn menu(c: &Choice, texts: &Texts) -> String {
    let pick = default_pick(c);
    let mut out = format!("step {}: who goes next?\n", c.steps);
    for (i, id) in c.runnable.iter().enumerate() {
        let name = c.names.get(i).copied().unwrap_or("");
        let name = if name.is_empty() {
            format!("thread {id}")
        } else {
            name.to_string()
        };
        let step = c.next.get(i).copied().flatten();
        let place = step.and_then(|s| s.at).and_then(|at| texts.place(at));
        let mut what = step.map_or("start", |s| op_word(s.op)).to_string();
        if let Some(p) = place.as_ref().filter(|p| p.text.chars().count() <= 24) {
            if p.text != p.code {
                what = format!("{what} {}", p.text);
            }
        }
        let place = place
            .map(|p| format!("{}:{}  {}", p.file, p.line, p.code))
            .unwrap_or_default();
        let mark = if i == pick { '>' } else { ' ' };
        out.push_str(&format!(
            "{mark} {:>2}  {:<12} {:<14} {}\n",
            i + 1,
            name,
            what,
            place
        ));
    }
    out
}

/// What a line typed at `step>` asks for: a thread (its index), to run
/// freely (`None`), or an error to show.
fn answer(line: &str, c: &Choice) -> Result<Option<usize>, String> {
    let (cmd, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let arg = arg.trim();
    match cmd {
        "" | ":step" | ":s" if arg.is_empty() => Ok(Some(default_pick(c))),
        ":step" | ":s" => pick(arg, c).map(Some),
        ":run" | ":r" => Ok(None),
        ":help" | ":h" | ":?" => Err(HELP.to_string()),
        _ if !cmd.starts_with(':') => pick(line, c).map(Some),
        _ => Err(format!("{cmd} is not a step command; :help lists them")),
    }
}

/// A thread by its number in the list, or by name.
fn pick(which: &str, c: &Choice) -> Result<usize, String> {
    if let Ok(n) = which.parse::<usize>() {
        if (1..=c.runnable.len()).contains(&n) {
            return Ok(n - 1);
        }
        return Err(format!(
            "there is no thread {n} in the list (1 to {})",
            c.runnable.len()
        ));
    }
    c.names
        .iter()
        .position(|name| *name == which)
        .ok_or_else(|| format!("no runnable thread is called {which}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::engine::{Op, Step};

    #[test]
    fn answers_pick_by_number_name_or_default() {
        let runnable = [1, 2, 3];
        let next = [None, Some(Step::new(Op::Acquire, 4, None)), None];
        let names = ["main", "worker-1", "worker-2"];
        let c = Choice {
            runnable: &runnable,
            next: &next,
            names: &names,
            current: Some(2),
            steps: 7,
        };
        assert_eq!(answer("", &c), Ok(Some(1)));
        assert_eq!(answer(":step 3", &c), Ok(Some(2)));
        assert_eq!(answer("worker-2", &c), Ok(Some(2)));
        assert_eq!(answer(":step main", &c), Ok(Some(0)));
        assert_eq!(answer(":run", &c), Ok(None));
        assert!(answer(":step 9", &c).is_err());
        assert!(answer(":jump", &c).is_err());
        let menu = menu(&c, &Texts::script("x", ""));
        assert!(menu.contains(">  2  worker-1     acquire "), "{menu}");
    }
}
