//! `completions` and `man`: the command line described for shells and for people, from
//! the same definitions that parse it, so neither can fall behind the help.

use std::fmt::Write as _;

use clap::{Arg, CommandFactory};

use crate::cli::{Cli, ManualFormat};
use crate::error::{CliError, CliResult, Exit};
use crate::output::Output;

pub fn completions(shell: clap_complete::Shell) -> CliResult<Exit> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "cudapkgs", &mut script);
    Output::print(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Success)
}

pub fn man(format: ManualFormat) -> CliResult<Exit> {
    let text = match format {
        ManualFormat::Roff => roff()?,
        ManualFormat::Markdown => markdown(),
    };
    Output::print(&text)?;
    Ok(Exit::Success)
}

/// One man page: the program's sections, then every command as a subsection of
/// COMMANDS (pages of their own would be a second copy to install and keep).
fn roff() -> CliResult<String> {
    let command = Cli::command();
    let mut page = Vec::new();
    let write_error = |error: std::io::Error| CliError::new("cannot render").caused_by(&error);
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(&mut page)
        .and_then(|()| man.render_name_section(&mut page))
        .and_then(|()| man.render_synopsis_section(&mut page))
        .and_then(|()| man.render_description_section(&mut page))
        .and_then(|()| man.render_options_section(&mut page))
        .map_err(write_error)?;
    page.extend(b".SH COMMANDS\n");
    for (name, sub) in visible_commands(&command, "cudapkgs") {
        let man = clap_mangen::Man::new(sub.bin_name(&name));
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)
            .and_then(|()| man.render_description_section(&mut section))
            .and_then(|()| man.render_options_section(&mut section))
            .map_err(write_error)?;
        page.extend(format!(".SS \"{name}\"\n").into_bytes());
        page.extend(as_subsection(&section));
    }
    man.render_version_section(&mut page).map_err(write_error)?;
    Ok(ascii_roff(&String::from_utf8_lossy(&page)))
}

/// Roff with every character beyond ASCII written as its escape (`…` as `\[u2026]`):
/// troff reads bytes, and not every man reader converts UTF-8 first.
fn ascii_roff(page: &str) -> String {
    let mut ascii = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let _ = write!(ascii, "\\[u{:04X}]", u32::from(c));
        }
    }
    ascii
}

/// A command's sections as the body of its subsection: each section heading becomes an
/// indented label, so the page keeps one level of sections.
fn as_subsection(sections: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(sections)
        .lines()
        // The quote definitions each rendering repeats are in the title already.
        .filter(|line| !line.starts_with(".ie ") && !line.starts_with(".el "))
        .map(|line| match line.strip_prefix(".SH ") {
            Some(heading) => format!(".TP\n.B {heading}\n"),
            None => format!("{line}\n"),
        })
        .flat_map(String::into_bytes)
        .collect()
}

/// Every subcommand people may run, with its full name (`cudapkgs store add`), depth
/// first; of a built command, each usage names the whole path.
fn visible_commands(command: &clap::Command, name: &str) -> Vec<(String, clap::Command)> {
    let mut found = Vec::new();
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let full = format!("{name} {}", sub.get_name());
        found.push((full.clone(), sub.clone()));
        found.extend(visible_commands(sub, &full));
    }
    found
}

/// The command reference: the global options, then a section per command with its
/// description, usage, arguments and options.
fn markdown() -> String {
    let mut command = Cli::command();
    command.build();
    let mut text = String::from(
        "# Command reference\n\n\
         Written by `cudapkgs man --format markdown` from the definitions that parse the \
         command line; a test fails when this file and the help differ.\n\n",
    );
    let _ = writeln!(text, "## cudapkgs\n");
    let _ = writeln!(text, "{}\n", long_about(&command));
    write_usage(&mut text, &mut command);
    write_arguments(&mut text, &command, true);
    for (name, mut sub) in visible_commands(&command, "cudapkgs") {
        let _ = writeln!(text, "## {name}\n");
        let _ = writeln!(text, "{}\n", long_about(&sub));
        write_usage(&mut text, &mut sub);
        write_arguments(&mut text, &sub, false);
        if let Some(examples) = sub.get_after_long_help() {
            let _ = writeln!(text, "```text\n{}\n```\n", examples.to_string().trim_end());
        }
    }
    text
}

fn long_about(command: &clap::Command) -> String {
    command
        .get_long_about()
        .or_else(|| command.get_about())
        .map(|about| about.to_string().trim_end().to_owned())
        .unwrap_or_default()
}

fn write_usage(text: &mut String, command: &mut clap::Command) {
    let usage = command.render_usage().to_string();
    let usage = usage.trim_start_matches("Usage: ");
    let _ = writeln!(text, "```text\n{usage}\n```\n");
}

/// Positional arguments, then options; global ones only on the top-level command.
fn write_arguments(text: &mut String, command: &clap::Command, top_level: bool) {
    let shown = |arg: &&Arg| {
        !arg.is_hide_set()
            && !matches!(arg.get_id().as_str(), "help" | "version")
            && (top_level || !arg.is_global_set())
    };
    let positional: Vec<&Arg> = command.get_positionals().filter(|arg| shown(arg)).collect();
    let options: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_positional())
        .filter(|arg| shown(arg))
        .collect();
    for (heading, args) in [("Arguments", positional), ("Options", options)] {
        if args.is_empty() {
            continue;
        }
        let _ = writeln!(text, "{heading}:\n");
        for arg in args {
            let _ = writeln!(text, "- `{}`: {}", spelling(arg), arg_help(arg));
        }
        text.push('\n');
    }
}

/// How an argument is written: `-o, --out <DIR>` or `<PATH>...`.
fn spelling(arg: &Arg) -> String {
    let values = arg.get_value_names().map_or_else(
        || format!("<{}>", arg.get_id().as_str().to_uppercase()),
        |names| {
            names
                .iter()
                .map(|name| format!("<{name}>"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    let repeats = matches!(arg.get_num_args(), Some(range) if range.max_values() > 1)
        || matches!(arg.get_action(), clap::ArgAction::Append);
    if arg.is_positional() {
        return if repeats {
            format!("{values}...")
        } else {
            values
        };
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let takes_value = arg.get_action().takes_values();
    if takes_value {
        format!("{} {values}", names.join(", "))
    } else {
        names.join(", ")
    }
}

/// An argument's help on one line, with its values and default.
fn arg_help(arg: &Arg) -> String {
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|help| {
            help.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| format!("`{}`", value.get_name()))
        .collect();
    if !values.is_empty() && arg.get_action().takes_values() {
        let _ = write!(help, " (one of {})", values.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && arg.get_action().takes_values() {
        let _ = write!(help, " [default: {}]", defaults.join(", "));
    }
    help
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(command, argument)` for every argument people can pass that has no help.
    fn arguments_without_help(command: &clap::Command, name: &str) -> Vec<String> {
        let mut missing: Vec<String> = command
            .get_arguments()
            .filter(|arg| {
                !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version")
            })
            .filter(|arg| {
                arg.get_help()
                    .is_none_or(|help| help.to_string().trim().is_empty())
            })
            .map(|arg| format!("{name}: {}", spelling(arg)))
            .collect();
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            if sub.get_about().is_none() {
                missing.push(format!("{name} {}: the command itself", sub.get_name()));
            }
            missing.extend(arguments_without_help(
                sub,
                &format!("{name} {}", sub.get_name()),
            ));
        }
        missing
    }

    #[test]
    fn every_command_and_argument_has_help() {
        let missing = arguments_without_help(&Cli::command(), "cudapkgs");
        assert!(missing.is_empty(), "no help for:\n{}", missing.join("\n"));
    }

    #[test]
    fn the_help_check_sees_an_argument_without_help() {
        let command = clap::Command::new("t").arg(Arg::new("path"));
        assert_eq!(arguments_without_help(&command, "t"), ["t: <PATH>"]);
    }

    #[test]
    fn the_reference_has_a_section_per_visible_command() {
        let reference = markdown();
        for (name, _) in visible_commands(&Cli::command(), "cudapkgs") {
            assert!(reference.contains(&format!("\n## {name}\n")), "{name}");
        }
        assert!(!reference.contains("gpu-child"));
    }

    #[test]
    fn roff_escapes_what_is_beyond_ascii() {
        assert_eq!(ascii_roff("a … → b"), "a \\[u2026] \\[u2192] b");
    }

    #[test]
    fn the_manual_names_every_command() {
        let page = roff().expect("renders");
        assert!(
            page.starts_with(".ie") || page.starts_with(".TH"),
            "{}",
            &page[..80]
        );
        for (name, _) in visible_commands(&Cli::command(), "cudapkgs") {
            assert!(page.contains(&format!(".SS \"{name}\"")), "{name}");
        }
    }
}
