//! Key bindings. Input that arrives in one burst (a paste, keys typed
//! ahead while an entry runs, `tmux send-keys`) is read exactly as if it
//! were typed: each newline is Enter, so every entry in it runs, in order,
//! and a multi-line block continues on `... ` lines. That is why bracketed
//! paste is off, and its markers (which a terminal or a test may still
//! send) do nothing: a bracketed paste would otherwise become one edit
//! buffer waiting for an extra Enter.

use rustyline::history::FileHistory;
use rustyline::{
    Cmd, ConditionalEventHandler, Editor, Event, EventContext, EventHandler, KeyCode, KeyEvent,
    Modifiers, RepeatCount,
};

use super::helper::ReplHelper;

pub fn bind(editor: &mut Editor<ReplHelper, FileHistory>) {
    for marker in [KeyCode::BracketedPasteStart, KeyCode::BracketedPasteEnd] {
        editor.bind_sequence(KeyEvent(marker, Modifiers::NONE), Cmd::Noop);
    }
    editor.bind_sequence(
        KeyEvent(KeyCode::Tab, Modifiers::NONE),
        EventHandler::Conditional(Box::new(IndentOrComplete)),
    );
}

/// Tab after blank space indents (pasted code indented with tabs keeps its
/// shape instead of opening completion lists); after a word, it completes.
struct IndentOrComplete;

impl ConditionalEventHandler for IndentOrComplete {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        let before = ctx.line().get(..ctx.pos()).unwrap_or("");
        let after_blank = before.chars().last().is_none_or(char::is_whitespace);
        after_blank.then(|| Cmd::Insert(1, "    ".to_string()))
    }
}
