from nasbox.cli import main

raise SystemExit(main())
