//! Compile the Punkt parameters into sorted static tables, so a fresh plugin instance pays
//! nothing to load them (a plugin has no file access at run time anyway).

use std::fmt::Write as _;
use std::path::Path;

fn read(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sorted_set(text: &str) -> Vec<String> {
    let mut items: Vec<String> = text.lines().map(str::to_string).collect();
    items.sort();
    items.dedup();
    items
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/punkt-english");
    let mut out = String::new();

    let abbrevs = sorted_set(&read(&dir, "abbrev_types.txt"));
    writeln!(out, "pub static ABBREV_TYPES: &[&str] = &{abbrevs:?};").unwrap();

    let starters = sorted_set(&read(&dir, "sent_starters.txt"));
    writeln!(out, "pub static SENT_STARTERS: &[&str] = &{starters:?};").unwrap();

    let mut collocations: Vec<(String, String)> = read(&dir, "collocations.tab")
        .lines()
        .map(|line| {
            let (a, b) = line
                .split_once('\t')
                .expect("collocation is two tab-separated types");
            (a.to_string(), b.to_string())
        })
        .collect();
    collocations.sort();
    writeln!(
        out,
        "pub static COLLOCATIONS: &[(&str, &str)] = &{collocations:?};"
    )
    .unwrap();

    let mut ortho: Vec<(String, u32)> = read(&dir, "ortho_context.tab")
        .lines()
        .map(|line| {
            let (typ, flags) = line
                .rsplit_once('\t')
                .expect("ortho line is type<TAB>flags");
            (
                typ.to_string(),
                flags.trim().parse().expect("ortho flags are an integer"),
            )
        })
        .collect();
    ortho.sort();
    writeln!(
        out,
        "pub static ORTHO_CONTEXT: &[(&str, u32)] = &{ortho:?};"
    )
    .unwrap();

    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("punkt_params.rs"), out).unwrap();
}
