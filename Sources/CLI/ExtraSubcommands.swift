// Commands added by later issues (rpm, boot-test, batch, register, cleanup) are listed here.
let extraSubcommands: [Subcommand] = [
    RegisterCommand.subcommand,
    CleanupCommand.subcommand,
    RPMCommand.subcommand,
    BootTestCommand.subcommand,
    BatchCommand.subcommand,
    InspectCommand.subcommand,
]
