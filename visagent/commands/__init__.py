"""One module per `visagent` subcommand; each defines `register(subparsers)` (see visagent.cli)."""
