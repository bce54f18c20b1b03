from visagent.cli import main

raise SystemExit(main())
