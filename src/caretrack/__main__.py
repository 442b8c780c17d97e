from caretrack.cli import main

raise SystemExit(main())
