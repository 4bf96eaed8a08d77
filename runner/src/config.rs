//! Command-line settings of the runner binary, resolved once before the session
//! starts. There is no config file: the controller passes everything as arguments.

use std::time::Duration;

/// The default for both the idle and the total time to live.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Longer TTLs are cut to this, so deadline arithmetic cannot overflow.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

pub const USAGE: &str = "\
usage: froyo-runner [--ttl-secs N] [--idle-secs N] [--max-in-flight N] [--unlink]

Runs ops for the OpenFroyo controller: JSON frames on stdin, answers on stdout.
  --ttl-secs N       exit N seconds after start (default 600)
  --idle-secs N      exit after N seconds without frames or running commands (default 600)
  --max-in-flight N  commands running at once; more wait (default 32)
  --unlink           delete this executable right after start, before `ready`";

/// Resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ttl: Duration,
    pub idle: Duration,
    pub unlink: bool,
    pub max_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            idle: DEFAULT_TTL,
            unlink: false,
            max_in_flight: 32,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run(Config),
    Help,
    Version,
}

impl Config {
    /// Parses the arguments after the program name. `--name value` and `--name=value`
    /// are both accepted.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Invocation, String> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |what: &str| -> Result<u64, String> {
                let text = inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or(format!("`{what}` needs a number"))?;
                text.parse::<u64>()
                    .map_err(|_| format!("`{what}` needs a number, got `{text}`"))
            };
            match name.as_str() {
                "--ttl-secs" => {
                    config.ttl = Duration::from_secs(value("--ttl-secs")?.min(MAX_TTL_SECS))
                }
                "--idle-secs" => {
                    config.idle = Duration::from_secs(value("--idle-secs")?.min(MAX_TTL_SECS))
                }
                "--max-in-flight" => {
                    config.max_in_flight =
                        usize::try_from(value("--max-in-flight")?.clamp(1, 1024)).unwrap_or(32);
                }
                "--unlink" if inline.is_none() => config.unlink = true,
                "-h" | "--help" => return Ok(Invocation::Help),
                "-V" | "--version" => return Ok(Invocation::Version),
                _ => return Err(format!("unknown argument `{arg}`")),
            }
        }
        Ok(Invocation::Run(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, String> {
        Config::from_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_parse() {
        assert_eq!(parse(&[]), Ok(Invocation::Run(Config::default())));
        let expect = Config {
            ttl: Duration::from_secs(5),
            idle: Duration::from_secs(1),
            unlink: true,
            max_in_flight: 32,
        };
        assert_eq!(
            parse(&["--ttl-secs", "5", "--idle-secs=1", "--unlink"]),
            Ok(Invocation::Run(expect))
        );
        assert_eq!(parse(&["--help"]), Ok(Invocation::Help));
        assert!(parse(&["--ttl-secs"]).is_err());
        assert!(parse(&["--ttl-secs", "-1"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--unlink=yes"]).is_err());
        let Ok(Invocation::Run(c)) = parse(&["--ttl-secs", "18446744073709551615"]) else {
            panic!("parses")
        };
        assert_eq!(c.ttl, Duration::from_secs(MAX_TTL_SECS));
    }
}
