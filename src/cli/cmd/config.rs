//! `queuectl config get | set | list`: persisted settings, validated by the library.

use queuectl::SettingKey;

use crate::cli::args::ConfigCommand;
use crate::cli::open_store::{open, open_to_read};
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, command: ConfigCommand) -> anyhow::Result<()> {
    // Keys and values are checked before the store is opened: a usage error touches nothing.
    match command {
        ConfigCommand::Get { key } => {
            let key = SettingKey::parse(&key)?;
            let (sched, _) = open_to_read(db)?;
            print_lines([sched.settings()?.get(key)])
        }
        ConfigCommand::Set { key, value } => {
            SettingKey::parse(&key)?.validate(&value)?;
            let (sched, _) = open(db)?;
            let (key, value) = sched.set_setting(&key, &value)?;
            print_lines([format!("{} = {value}", key.name())])
        }
        ConfigCommand::List => {
            let (sched, _) = open_to_read(db)?;
            let settings = sched.settings()?;
            print_lines(
                SettingKey::ALL
                    .iter()
                    .map(|k| format!("{} = {}", k.name(), settings.get(*k))),
            )
        }
    }
}
