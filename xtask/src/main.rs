//! `cargo xtask plugins [--with-fixtures]`: build every plugin into a component.

use std::process::ExitCode;

use spar_xtask::{Selection, build_plugins, workspace_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let selection = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["plugins"] => Selection::Plugins,
        ["plugins", "--with-fixtures"] => Selection::All,
        _ => {
            eprintln!("usage: cargo xtask plugins [--with-fixtures]");
            return ExitCode::from(2);
        }
    };
    match build_plugins(&workspace_root(), selection) {
        Ok(built) => {
            for plugin in built {
                println!("{}", plugin.wasm.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
