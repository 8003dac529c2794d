use conc::parser::parse;
use conc::span::SourceId;

#[test]
fn explore() {
    let inputs = std::fs::read_to_string("/tmp/conc_inputs").unwrap_or_default();
    for input in inputs.split("\u{1}") {
        match parse(input, SourceId(0)) {
            Ok(p) => println!("{:.200} => OK {:.300}", format!("{input:?}"), format!("{:?}", p.stmts.iter().map(|s| format!("{:?}", s.node)).collect::<Vec<_>>())),
            Err(e) => { println!("{:.200} =>", format!("{input:?}")); println!("    ERR {:?} at {}..{} label={:?} incomplete={}", e.message, e.span.start, e.span.end, e.label, e.incomplete) }
        }
    }
}
