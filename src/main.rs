fn main() {
    eprintln!("conc: not built yet");
    std::process::exit(2);
}
