from caretrack.site.cli import main

raise SystemExit(main())
