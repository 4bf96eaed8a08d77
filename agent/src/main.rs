//! `froyo-agent`: the edge agent's binary (also reached as `froyo agent`).

fn main() -> std::process::ExitCode {
    froyo_agent::cli::main()
}
