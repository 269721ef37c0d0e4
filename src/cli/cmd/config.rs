//! `queuectl config get | set | list`: persisted settings, validated by the library.

use queuectl::SettingKey;

use crate::cli::args::ConfigCommand;
use crate::cli::open_store::open;
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, command: ConfigCommand) -> anyhow::Result<()> {
    // An unknown key is a usage error: report it before touching the store.
    if let ConfigCommand::Get { key } | ConfigCommand::Set { key, .. } = &command {
        SettingKey::parse(key)?;
    }
    let (sched, _) = open(db)?;
    match command {
        ConfigCommand::Get { key } => {
            let key = SettingKey::parse(&key)?;
            print_lines([sched.settings()?.get(key)])
        }
        ConfigCommand::Set { key, value } => {
            let (key, value) = sched.set_setting(&key, &value)?;
            print_lines([format!("{} = {value}", key.name())])
        }
        ConfigCommand::List => {
            let settings = sched.settings()?;
            print_lines(
                SettingKey::ALL
                    .iter()
                    .map(|k| format!("{} = {}", k.name(), settings.get(*k))),
            )
        }
    }
}
